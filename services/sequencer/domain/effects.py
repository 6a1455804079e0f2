"""What the sequencer tells the world, built from a lead: touch-point commands and
`LeadChanged` snapshots (DESIGN §2–4). Pure.

The contract models are filled with `trusted` (no validation): every value here comes from an
already validated lead (UTC datetimes, enums), and validating again would double the per-event
cost.
Tests parse the output back with the contracts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from schemas.base import LeadState, command_id_for, trusted
from schemas.events import (
    Customer as CustomerContract,
)
from schemas.events import (
    LeadChanged,
    LeadSnapshot,
    Recipient,
    TouchPointCommand,
)
from services.sequencer.domain.campaigns import declined_work
from services.sequencer.domain.lead import Lead, derive_state, sequence_stopped
from services.sequencer.domain.planner import DueCommand

#: A lead's visible content: what the read model shows (everything but version/updated_at).
Visible = tuple[Any, ...]


def visible(lead: Lead) -> Visible:
    c = lead.customer
    state, lost_reason = derive_state(lead)
    return (
        state,
        lost_reason,
        lead.source,
        lead.order_id,
        lead.order_number,
        (c.customer_id, c.first_name, c.last_name, c.email, c.phone),
        lead.vehicle,
        tuple(lead.services),
        lead.created_at,
        lead.last_touch_at,
        lead.touches_sent,
        lead.email_off is not None,
        lead.sms_off is not None,
        declined_work(lead.facts),
        sequence_stopped(lead),
    )


def snapshot(lead: Lead) -> LeadSnapshot:
    c = lead.customer
    state, lost_reason = derive_state(lead)
    work = declined_work(lead.facts)
    return trusted(
        LeadSnapshot,
        lead_id=lead.lead_id,
        tenant_id=lead.tenant_id,
        state=state,
        source=lead.source,
        version=lead.version,
        shopmonkey_order_id=lead.order_id,
        order_number=lead.order_number,
        customer=trusted(
            CustomerContract,
            customer_id=c.customer_id,
            first_name=c.first_name,
            last_name=c.last_name,
            email=c.email,
            phone=c.phone,
            preferred=c.preferred,
        ),
        vehicle=lead.vehicle,
        services=list(lead.services),
        lost_reason=lost_reason,
        created_at=lead.created_at,
        updated_at=lead.updated_at,
        last_touch_at=lead.last_touch_at,
        touches_sent=lead.touches_sent,
        email_opted_out=lead.email_off is not None,
        sms_opted_out=lead.sms_off is not None,
        sequence_stopped=sequence_stopped(lead),
        declined_services=work.services,
        declined_cents=work.cents,
        revived_services=work.revived_services,
        revived_cents=work.revived_cents,
    )


def lead_changed(
    lead: Lead, *, from_state: LeadState | None, reason: str, now: datetime
) -> LeadChanged:
    snap = snapshot(lead)
    return trusted(
        LeadChanged,
        schema_version=1,
        tenant_id=lead.tenant_id,
        lead_id=lead.lead_id,
        from_state=from_state,
        to_state=snap.state,
        reason=reason,
        changed_at=now,
        lead=snap,
    )


def touchpoint_command(
    lead: Lead, due: DueCommand, *, now: datetime, record_only: bool = False
) -> TouchPointCommand:
    c = lead.customer
    context: dict[str, Any] = {
        "source": lead.source.value,
        "order_number": lead.order_number,
        "vehicle": lead.vehicle,
        "services": list(lead.services),
        "service_of_interest": lead.service_of_interest,
        "lead_created_at": lead.created_at.isoformat(),
    }
    if due.reemit:
        context["reemitted"] = True
    if due.campaign is not None:
        context["campaign"] = due.campaign.split(":", 1)[0]
        context.update((key, list(v) if isinstance(v, tuple) else v) for key, v in due.context)
    return trusted(
        TouchPointCommand,
        schema_version=1,
        command_id=command_id_for(lead.lead_id, due.step_index, due.channel, due.campaign),
        tenant_id=lead.tenant_id,
        lead_id=lead.lead_id,
        step_index=due.step_index,
        channel=due.channel,
        template=due.template,
        due_at=due.due_at,
        issued_at=now,
        recipient=trusted(
            Recipient, email=c.email, phone=c.phone, first_name=c.first_name, last_name=c.last_name
        ),
        context=context,
        record_only=record_only,
        campaign=due.campaign,
    )
