"""The lead lifecycle (DESIGN §4): (lead, signal) → lead', pure and order-insensitive.

Every function returns a new `Lead` and never mutates its argument. Each signal only ever
raises the parts of the lead (see `lead.py`), so duplicates change nothing and late or
out-of-order signals never move a lead backwards: `completed` is final, a late `delivered`
does not undo `engaged`, a late `sent` does not undo `engaged`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime

from schemas.base import Channel
from schemas.events import (
    ContactSignal,
    OrderEvent,
    OrderSnapshot,
    OutcomeStatus,
    ServiceAuthorization,
    SignalKind,
    TouchPointOutcome,
)
from schemas.events import Customer as CustomerContract
from schemas.events import Operation as Op
from services.sequencer.domain.campaigns import (
    ORDER_APPOINTMENT,
    AppointmentFacts,
    CampaignFacts,
    DeclinedService,
    earliest,
    latest,
)
from services.sequencer.domain.lead import (
    Customer,
    EventKey,
    Lead,
    Stage,
    StepRecord,
    StepStatus,
)

#: How many recent event/signal ids a lead remembers for cheap duplicate detection.
SEEN_LIMIT = 16

OUTCOME_STATUS: dict[OutcomeStatus, StepStatus] = {
    OutcomeStatus.SENT: StepStatus.SENT,
    OutcomeStatus.SKIPPED: StepStatus.SKIPPED,
    OutcomeStatus.DEFERRED: StepStatus.DEFERRED,
    OutcomeStatus.FAILED: StepStatus.FAILED,
    OutcomeStatus.UNKNOWN: StepStatus.UNKNOWN,
    OutcomeStatus.RECORDED: StepStatus.RECORDED,
}
#: Skip reasons that mean the lead must not be contacted on that channel again.
CHANNEL_OFF_SKIPS = frozenset({"suppressed", "lead_opted_out"})

ENGAGEMENT = {
    SignalKind.REPLIED: "replied",
    SignalKind.CLICKED: "clicked",
    SignalKind.CHAT_OPENED: "chat_opened",
}
EMAIL_OFF_SIGNALS = frozenset(
    {SignalKind.BOUNCED, SignalKind.DROPPED, SignalKind.UNSUBSCRIBED, SignalKind.SPAM_REPORT}
)


def ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def clone(lead: Lead) -> Lead:
    """A copy whose containers can be changed without touching `lead` (records are replaced,
    never mutated)."""
    runs = {run: dict(steps) for run, steps in lead.runs.items()} if lead.runs else {}
    return lead.copy(steps=dict(lead.steps), seen=list(lead.seen), runs=runs)


def _facts(lead: Lead) -> CampaignFacts:
    """`lead.facts` made the clone's own, to be changed."""
    lead.facts = CampaignFacts() if lead.facts is None else lead.facts.copy()
    return lead.facts


def _order_facts(lead: Lead, event: OrderEvent, order: OrderSnapshot) -> None:
    """What the order tells campaigns: paid (review), declined or deferred work on an invoiced
    order (declined work), an appointment date (reminder, when no appointment record says)."""
    at = event.occurred_at.astimezone(UTC)
    closed = order.paid or order.invoiced or order.status == "Invoice"
    declines = [
        line
        for line in order.service_lines
        if closed and (line.authorization is ServiceAuthorization.DECLINED or line.deferred)
    ]
    if not (order.paid or declines or order.appointment_at is not None):
        return
    facts = _facts(lead)
    if order.paid:
        facts.paid_at = earliest(facts.paid_at, at)
    if declines:
        facts.declined_at = earliest(facts.declined_at, at)
        for line in declines:
            seen = DeclinedService(line.name, line.total_cents)
            old = facts.declined.get(line.service_id)
            if old is None or _rank(seen) > _rank(old):  # any order of events: the same
                facts.declined[line.service_id] = seen
    if order.appointment_at is not None:
        _appointment(
            facts,
            f"{ORDER_APPOINTMENT}{order.order_id}",
            AppointmentFacts(
                (order.version if order.version is not None else -1, ms(at), event.event_id),
                order.appointment_at.astimezone(UTC),
                cancelled=False,
                shopmonkey_reminder=False,
            ),
        )


def _rank(service: DeclinedService) -> tuple[str, int]:
    return (service.name or "", service.total_cents)


def _appointment(facts: CampaignFacts, appointment_id: str, new: AppointmentFacts) -> None:
    old = facts.appointments.get(appointment_id)
    if old is None or new.key > old.key:
        facts.appointments[appointment_id] = new


def apply_appointment(lead: Lead, event: OrderEvent) -> Lead:
    """An appointment record of this lead's order (its latest version wins)."""
    appointment = event.appointment
    if appointment is None or is_duplicate(lead, event.event_id):
        return lead
    out = clone(lead)  # what the lead shows stays, `updated_at` included (`Sequencer._commit`)
    _appointment(
        _facts(out),
        appointment.appointment_id,
        AppointmentFacts(
            (
                appointment.version if appointment.version is not None else -1,
                ms(event.occurred_at),
                event.event_id,
            ),
            appointment.start_at.astimezone(UTC),
            cancelled=appointment.cancelled or event.operation is Op.DELETE,
            shopmonkey_reminder=appointment.shopmonkey_reminder,
        ),
    )
    _remember(out, event.event_id)
    return out


def customer_returned(lead: Lead, created_at: datetime, revived: set[str]) -> Lead:
    """Another order of this lead's customer, created at `created_at`, reviving `revived`
    (service ids): a declined-work run that started before that order stops (`campaigns`).
    Only a lead with campaign facts created before that order can be stopped; any other is
    returned as it is."""
    at = created_at.astimezone(UTC)
    facts = lead.facts
    if facts is None or lead.created_at >= at:
        return lead
    if facts.returned_at is not None and facts.returned_at >= at and revived <= facts.revived:
        return lead  # known already
    out = clone(lead)
    facts = _facts(out)
    facts.returned_at = latest(facts.returned_at, at)
    facts.revived |= revived
    return out


def digest(event_id: str) -> str:
    """A 64-bit digest of an event id: what a lead remembers of the events it saw."""
    return hashlib.blake2b(event_id.encode(), digest_size=8).hexdigest()


def is_duplicate(lead: Lead | None, event_id: str) -> bool:
    return lead is not None and digest(event_id) in lead.seen


def _remember(lead: Lead, event_id: str) -> None:
    d = digest(event_id)
    if d not in lead.seen:
        lead.seen.append(d)
        del lead.seen[:-SEEN_LIMIT]


def _raise_stage(lead: Lead, stage: Stage, reason: str) -> None:
    if (stage, reason) > (lead.stage, lead.stage_reason):
        lead.stage, lead.stage_reason = stage, reason


def _channel_off(lead: Lead, channel: Channel | None, reason: str) -> None:
    """Turn a channel off (both when None); keeps the smallest reason so order is irrelevant."""
    for ch in (Channel.EMAIL, Channel.SMS) if channel is None else (channel,):
        current = lead.channel_off(ch)
        value = reason if current is None else min(current, reason)
        if ch is Channel.EMAIL:
            lead.email_off = value
        else:
            lead.sms_off = value


def order_stage(event: OrderEvent) -> tuple[Stage, str]:
    """The business progress one order event shows."""
    order = event.order
    if event.operation is Op.DELETE and event.entity != "customer":
        return Stage.LOST, "order_deleted"
    if order is None:
        return Stage.NEW, "created"
    if order.paid:
        return Stage.COMPLETED, "paid"
    if order.invoiced or order.status == "Invoice":
        return Stage.COMPLETED, "invoiced"
    if order.deleted:
        return Stage.LOST, "order_deleted"
    if order.archived:
        return Stage.LOST, "order_archived"
    if order.status == "RepairOrder":
        return Stage.APPOINTMENT_SET, "repair_order"
    if order.appointment_at is not None:
        return Stage.APPOINTMENT_SET, "appointment"
    if order.authorized:
        return Stage.QUALIFIED, "authorized"
    return Stage.NEW, "created"


def _customer(c: CustomerContract) -> Customer | None:
    values = (c.customer_id, c.first_name, c.last_name, c.email, c.phone)
    if not any(values):
        return None
    return Customer(*values, preferred=c.preferred)


def _apply_customer(lead: Lead, key: EventKey, customer: CustomerContract) -> None:
    facts = _customer(customer)
    if facts is not None and (lead.customer_key is None or key > lead.customer_key):
        lead.customer_key, lead.customer = key, facts


def _apply_order_facts(lead: Lead, event: OrderEvent, order: OrderSnapshot) -> None:
    key = (
        order.version if order.version is not None else -1,
        ms(event.occurred_at),
        event.event_id,
    )
    if lead.order_key is None or key > lead.order_key:
        lead.order_key = key
        lead.order_id = order.order_id
        lead.order_number = order.number
        lead.order_status = order.status
        lead.vehicle = order.vehicle
        lead.services = list(order.services)


def new_lead(event: OrderEvent) -> Lead:
    """An empty lead for the first event of `event.lead_id` (apply the event next).

    Only an order or website-form event creates a lead; a customer change applies to leads
    that exist (otherwise the result would depend on which event came first)."""
    if event.lead_id is None or event.entity == "customer":
        raise ValueError("only an order or website-form event with a lead_id creates a lead")
    created = _created_at(event)
    return Lead(
        lead_id=event.lead_id,
        tenant_id=event.tenant_id,
        created_at=created,
        updated_at=event.occurred_at.astimezone(UTC),
        source=event.source,
        origin=(ms(event.occurred_at), event.event_id),
    )


def _created_at(event: OrderEvent) -> datetime:
    if event.order is not None and event.order.created_at is not None:
        return event.order.created_at.astimezone(UTC)
    return event.occurred_at.astimezone(UTC)


def apply_order(lead: Lead | None, event: OrderEvent) -> Lead:
    """An order, website-form or customer event for this lead (creates it when None)."""
    if lead is None:
        lead = new_lead(event)
    elif is_duplicate(lead, event.event_id):
        return lead
    out = clone(lead)
    key: EventKey = (ms(event.occurred_at), event.event_id)
    _apply_customer(out, key, event.customer)
    if event.entity != "customer" or out.customer != lead.customer:
        # a customer change moves it only when it changes the customer's details: one that
        # changes nothing (or only tells of an order elsewhere) is not the lead's activity,
        # and its effect must not depend on what other topics told the lead first
        out.updated_at = max(out.updated_at, event.occurred_at.astimezone(UTC))
    if event.entity != "customer":  # a customer event carries another order at most
        if key < out.origin:
            out.origin, out.source = key, event.source
        out.created_at = min(out.created_at, _created_at(event))
        out.nurture = out.nurture or event.plan_touchpoints
        if event.order is not None:
            _apply_order_facts(out, event, event.order)
            _order_facts(out, event, event.order)
        if event.service_of_interest and (out.interest_key is None or key > out.interest_key):
            out.interest_key, out.service_of_interest = key, event.service_of_interest
        _raise_stage(out, *order_stage(event))
    _remember(out, event.event_id)
    return out


def apply_outcome(lead: Lead, outcome: TouchPointOutcome) -> Lead:
    """What outbound did with one of this lead's commands."""
    out = clone(lead)
    status = OUTCOME_STATUS[outcome.status]
    steps = out.steps if outcome.campaign is None else out.runs.setdefault(outcome.campaign, {})
    old = steps.get(outcome.step_index)
    decided = outcome.decided_at.astimezone(UTC)
    until = outcome.deferred_until.astimezone(UTC) if outcome.deferred_until else None
    if old is None:
        rec = StepRecord(status=status, reason=outcome.reason, decided_at=decided, until=until)
    else:
        rec = dataclasses.replace(old)
        if status > old.status:
            rec.status, rec.reason, rec.decided_at = status, outcome.reason, decided
        elif status == old.status:
            # the same decision reported again (a re-delivery, outbound's duplicate answer
            # during a replay): the first report's time stands, whatever the arrival order
            rec.reason = max(old.reason, outcome.reason)
            rec.decided_at = min(old.decided_at or decided, decided)
        if until is not None:
            rec.until = until if old.until is None else max(old.until, until)
    steps[outcome.step_index] = rec
    if status is StepStatus.SENT:
        _raise_stage(out, Stage.CONTACTED, "touch_sent")
    elif status is StepStatus.SKIPPED and outcome.reason in CHANNEL_OFF_SKIPS:
        _channel_off(out, outcome.channel, outcome.reason)
    elif status is StepStatus.FAILED:
        _channel_off(out, outcome.channel, f"failed:{outcome.reason}"[:200])
    return out


def pause_of(signal: ContactSignal) -> tuple[str, bool]:
    """An operator's stop or resume as `Lead.pause`: the later signal wins, a stop wins a tie
    with a resume of the same instant (fail closed), then the signal id decides."""
    stopped = signal.kind is SignalKind.SEQUENCE_STOPPED
    at = signal.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return (f"{at}|{int(stopped)}|{signal.signal_id}", stopped)


def apply_contact(lead: Lead, signal: ContactSignal) -> Lead:
    """Something the customer or a provider told us about this lead."""
    if is_duplicate(lead, signal.signal_id):
        return lead
    out = clone(lead)
    out.updated_at = max(out.updated_at, signal.occurred_at.astimezone(UTC))
    kind = signal.kind
    if kind in ENGAGEMENT:
        _raise_stage(out, Stage.ENGAGED, ENGAGEMENT[kind])
        facts = _facts(out)
        facts.engaged_at = latest(facts.engaged_at, signal.occurred_at.astimezone(UTC))
    elif kind is SignalKind.QUALIFIED:
        _raise_stage(out, Stage.QUALIFIED, "qualified")
    elif kind is SignalKind.APPOINTMENT_BOOKED:
        _raise_stage(out, Stage.APPOINTMENT_SET, "appointment_booked")
    elif kind is SignalKind.LOST:
        _raise_stage(out, Stage.LOST, "marked_lost")
    elif kind in (SignalKind.SEQUENCE_STOPPED, SignalKind.SEQUENCE_RESUMED):
        out.pause = max(out.pause or ("", False), pause_of(signal))
    elif kind is SignalKind.OPTED_OUT:
        _channel_off(out, signal.channel, "opted_out")
    elif kind in EMAIL_OFF_SIGNALS:
        _channel_off(out, Channel.EMAIL, kind.value)
    elif kind is SignalKind.FAILED and signal.channel is not None:
        _channel_off(out, signal.channel, "delivery_failed")
    # delivered, undelivered, opened: informational. opted_in: outbound's suppression list
    # decides; the sequencer never turns a channel back on (fail-closed).
    _remember(out, signal.signal_id)
    return out
