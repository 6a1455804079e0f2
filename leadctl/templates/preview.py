"""What outbound would send a lead for a template: the command the sequencer would issue
(its recipient and context from the read model, `leads`), the location's profile as outbound
reads it, rendered by outbound's own renderer (`build_renderer`). Nothing is claimed,
recorded or sent."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from schemas.base import Channel, command_id_for
from schemas.events import Recipient, TouchPointCommand
from services.common.settings import CommonSettings
from services.outbound.adapters.templates import (
    TEMPLATE_NAME,
    JinjaRenderer,
    packaged_templates,
    template_files,
)
from services.outbound.adapters.tenants_pg import PROFILE_SQL, profile_from_row
from services.outbound.domain.model import OutboundMessage, TenantProfile
from services.sequencer.domain.campaigns import DEFAULT_CAMPAIGNS, Campaign


class PreviewError(ValueError):
    """The lead, its location or the template cannot be previewed; the message says why."""


def channels_of(template: str, wanted: Channel | None) -> tuple[Channel, ...]:
    """The channels `template` is rendered on: `wanted`, or each it exists for."""
    if not TEMPLATE_NAME.match(template):
        raise PreviewError(f"unknown template {template!r}: not a template name")
    available = packaged_templates()

    def missing(channel: Channel) -> list[str]:
        return [f for f in template_files(channel, template) if f not in available]

    if wanted is not None:
        absent = missing(wanted)
        if absent:
            raise PreviewError(
                f"unknown template {template!r} for {wanted.value}: no {', '.join(absent)} "
                "in services/outbound/templates"
            )
        return (wanted,)
    found = tuple(c for c in (Channel.EMAIL, Channel.SMS) if not missing(c))
    if not found:
        raise PreviewError(
            f"unknown template {template!r}: neither email/{template}.*.j2 nor "
            f"sms/{template}.txt.j2 in services/outbound/templates"
        )
    return found


def campaign_of(template: str) -> str | None:
    """The campaign whose default plan names `template` (None: the nurture plan's)."""
    for campaign in Campaign:
        if any(s.template == template for s in DEFAULT_CAMPAIGNS.of(campaign).steps):
            return campaign.value
    return None


def campaign_facts(campaign: str | None, lead: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """A campaign run's facts for the template, which the read model does not hold: the
    lead's services as the declined work, an appointment tomorrow at this hour."""
    if campaign is None:
        return {}
    facts: dict[str, Any] = {"campaign": campaign}
    if campaign == Campaign.DECLINED.value:
        facts["declined_services"] = list(lead.get("services") or [])
    if campaign == Campaign.APPOINTMENT.value:
        start = now.replace(minute=0, second=0, microsecond=0) + timedelta(days=1)
        facts["appointment_at"] = start.isoformat()
    return facts


def command_for(
    lead: Mapping[str, Any],
    template: str,
    channel: Channel,
    now: datetime,
    campaign: str | None = None,
) -> TouchPointCommand:
    """The command the sequencer would issue for this lead (`effects.touchpoint_command`'s
    recipient and context, from the read model's row; `campaign`: a campaign's step)."""
    lead_id: uuid.UUID = lead["lead_id"]
    created: datetime | None = lead.get("created_at")
    try:
        return TouchPointCommand(
            command_id=command_id_for(lead_id, 0, channel),
            tenant_id=lead["tenant_id"],
            lead_id=lead_id,
            step_index=0,
            channel=channel,
            template=template,
            due_at=now,
            issued_at=now,
            recipient=Recipient(
                email=lead.get("email"),
                phone=lead.get("phone"),
                first_name=lead.get("first_name"),
                last_name=lead.get("last_name"),
            ),
            context={
                "source": lead.get("source"),
                "order_number": lead.get("order_number"),
                "vehicle": lead.get("vehicle"),
                "services": list(lead.get("services") or []),
                "service_of_interest": None,
                "lead_created_at": created.isoformat() if created else None,
                **campaign_facts(campaign, lead, now),
            },
            campaign=campaign,
        )
    except ValidationError as exc:
        raise PreviewError(f"lead {lead_id}: its row makes no valid command: {exc}") from None


async def read_profile(settings: CommonSettings, tenant_id: uuid.UUID) -> TenantProfile | None:
    """The location's profile, read as outbound reads it (`tenants_pg`)."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(settings.libpq_url) as conn:
        cur = await conn.execute(PROFILE_SQL, {"tenant_id": tenant_id})
        row = await cur.fetchone()
    return profile_from_row(row) if row else None


def render(
    renderer: JinjaRenderer,
    lead: Mapping[str, Any],
    profile: TenantProfile,
    template: str,
    channels: tuple[Channel, ...],
    now: datetime,
    campaign: str | None = None,
) -> list[OutboundMessage]:
    from services.outbound.errors import TemplateError

    out = []
    for channel in channels:
        command = command_for(lead, template, channel, now, campaign)
        try:
            out.append(renderer.render(command, profile, now=now, validity_seconds=60))
        except TemplateError as exc:
            raise PreviewError(f"{channel.value} template {template!r}: {exc}") from None
    return out
