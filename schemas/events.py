"""Event contracts between the services (DESIGN §2). One model per topic value."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any, ClassVar, Literal

from pydantic import Field

from schemas import bounds
from schemas.base import AwareDatetime, Channel, Event, LeadState
from schemas.bounds import Email, Name, Phone, RecordId, ServiceName

ORDER_EVENTS = "leads.order-events.v1"
TOUCHPOINT_COMMANDS = "leads.touchpoint-commands.v1"
TOUCHPOINT_OUTCOMES = "leads.touchpoint-outcomes.v1"
CONTACT_SIGNALS = "leads.contact-signals.v1"
LEAD_CHANGES = "leads.lead-changes.v1"
ALL_TOPICS = (ORDER_EVENTS, TOUCHPOINT_COMMANDS, TOUCHPOINT_OUTCOMES, CONTACT_SIGNALS, LEAD_CHANGES)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class OrderSource(StrEnum):
    WEBHOOK = "webhook"
    POLL = "poll"
    WEBSITE = "website"
    BACKFILL = "backfill"


class Operation(StrEnum):
    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"


class Customer(Event):
    """What we know of the person behind a lead; any field may be missing."""

    customer_id: RecordId | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    #: `preferredContactMethod` ("sms", "email", "all"; None: not said): the channel a
    #: campaign step "on the customer's preferred channel" takes
    preferred: Literal["sms", "email", "all"] | None = None


class ServiceAuthorization(StrEnum):
    """A service's `authorizationStatus` (Shopmonkey's `NotAuthorized | Authorized |
    Declined`)."""

    NOT_AUTHORIZED = "not_authorized"
    AUTHORIZED = "authorized"
    DECLINED = "declined"


class ServiceLine(Event):
    """One line of work on an order (Shopmonkey's Service), what campaigns need of it.

    `deferred`: `deferredReason` is set and the service is not `excludedFromDeferred` (the shop
    keeps it on the customer's deferred list). `revived_from`: `revivedFromId`, the service of
    an earlier order this one brings back."""

    service_id: RecordId = Field(min_length=1)
    name: ServiceName | None = None
    authorization: ServiceAuthorization | None = None
    deferred: bool = False
    revived_from: RecordId | None = None
    total_cents: int = Field(default=0, ge=0, le=bounds.MAX_CENTS)


class Appointment(Event):
    """A Shopmonkey appointment (or an order's `appointmentDates` entry, `appointment_id`
    "order:<order id>:<n>"), as campaigns need it. `shopmonkey_reminder`: `sendReminder`,
    Shopmonkey sends its own reminder (ours never goes then)."""

    appointment_id: RecordId = Field(min_length=1)
    start_at: AwareDatetime
    end_at: AwareDatetime | None = None
    cancelled: bool = False
    shopmonkey_reminder: bool = False
    version: int | None = None


class OrderSnapshot(Event):
    """The Shopmonkey order as of this event, normalised to what the lifecycle needs."""

    order_id: str = Field(min_length=1, max_length=bounds.RECORD_ID)
    number: str | None = Field(default=None, max_length=bounds.ORDER_NUMBER)
    #: Estimate | RepairOrder | Invoice (Shopmonkey's own words)
    status: str = Field(default="Estimate", max_length=bounds.ORDER_STATUS)
    authorized: bool = False
    invoiced: bool = False
    paid: bool = False
    archived: bool = False
    deleted: bool = False
    appointment_at: AwareDatetime | None = None
    total_cents: int = 0
    vehicle: str | None = Field(default=None, max_length=bounds.VEHICLE)
    services: list[ServiceName] = Field(default_factory=list, max_length=bounds.SERVICES)
    #: the order's services with what campaigns read (empty: not known, e.g. not fetched)
    service_lines: list[ServiceLine] = Field(default_factory=list, max_length=bounds.SERVICES)
    version: int | None = None
    created_at: AwareDatetime | None = None
    updated_at: AwareDatetime | None = None


class OrderEvent(Event):
    """A change of a Shopmonkey order or customer, or a website lead (leads.order-events.v1).

    `event_id` is stable for the same change of the same record (table + id + meta.version),
    never a delivery attempt id. `lead_id` is None only for customer changes, which apply to
    every lead of that customer.
    """

    topic: ClassVar[str] = ORDER_EVENTS
    schema_version: Literal[1] = 1
    event_id: str = Field(min_length=1, max_length=bounds.EVENT_ID)
    tenant_id: uuid.UUID
    lead_id: uuid.UUID | None
    source: OrderSource
    entity: Literal["order", "customer", "website_form", "appointment"]
    operation: Operation
    occurred_at: AwareDatetime
    ingested_at: AwareDatetime
    order: OrderSnapshot | None = None
    customer: Customer = Field(default_factory=Customer)
    service_of_interest: str | None = Field(default=None, max_length=bounds.SERVICE_OF_INTEREST)
    plan_touchpoints: bool = True  # False for history too old to nurture (backfill)
    #: entity "appointment": the appointment (its `lead_id` is its order's lead)
    appointment: Appointment | None = None


class Recipient(Event):
    email: Email | None = None
    phone: Phone | None = None
    first_name: Name | None = None
    last_name: Name | None = None


class TouchPointCommand(Event):
    """Send one step of a lead's nurture plan on one channel (leads.touchpoint-commands.v1)."""

    topic: ClassVar[str] = TOUCHPOINT_COMMANDS
    schema_version: Literal[1] = 1
    command_id: uuid.UUID
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    step_index: int = Field(ge=0)
    channel: Channel
    template: str = Field(min_length=1, max_length=bounds.TEMPLATE)
    due_at: AwareDatetime
    issued_at: AwareDatetime
    recipient: Recipient
    context: dict[str, Any] = Field(default_factory=dict)
    record_only: bool = False  # set by replays: decide and record, never call a provider
    #: the campaign run this step belongs to ("review", "declined", "appointment:<id>@<start>");
    #: None: the estimate nurture plan
    campaign: str | None = Field(default=None, max_length=bounds.CAMPAIGN_RUN)


class OutcomeStatus(StrEnum):
    SENT = "sent"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECORDED = "recorded"  # record-only mode: the gate allowed it, nothing was sent


class TouchPointOutcome(Event):
    """What outbound decided and did for one command (leads.touchpoint-outcomes.v1)."""

    topic: ClassVar[str] = TOUCHPOINT_OUTCOMES
    schema_version: Literal[1] = 1
    command_id: uuid.UUID
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    step_index: int = Field(ge=0)
    channel: Channel
    status: OutcomeStatus
    reason: str = Field(max_length=bounds.DECISION_REASON)
    decided_at: AwareDatetime
    provider_message_id: str | None = Field(default=None, max_length=bounds.PROVIDER_MESSAGE_ID)
    deferred_until: AwareDatetime | None = None
    duplicate: bool = False  # the ledger already held this command: no new effect
    campaign: str | None = Field(default=None, max_length=bounds.CAMPAIGN_RUN)  # the command's


class SignalKind(StrEnum):
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    BOUNCED = "bounced"
    DROPPED = "dropped"
    SPAM_REPORT = "spam_report"
    UNSUBSCRIBED = "unsubscribed"
    OPENED = "opened"
    CLICKED = "clicked"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"
    REPLIED = "replied"
    CHAT_OPENED = "chat_opened"
    APPOINTMENT_BOOKED = "appointment_booked"
    QUALIFIED = "qualified"
    LOST = "lost"
    #: an operator stopped the lead's sequence (no more touch points until resumed)
    SEQUENCE_STOPPED = "sequence_stopped"
    SEQUENCE_RESUMED = "sequence_resumed"


class ContactSignal(Event):
    """Something a customer or a provider told us about a lead (leads.contact-signals.v1)."""

    topic: ClassVar[str] = CONTACT_SIGNALS
    schema_version: Literal[1] = 1
    signal_id: str = Field(min_length=1, max_length=bounds.EVENT_ID)
    tenant_id: uuid.UUID
    lead_id: uuid.UUID | None = None
    kind: SignalKind
    channel: Channel | None = None
    command_id: uuid.UUID | None = None
    #: the email address or phone number concerned
    contact: str | None = Field(default=None, max_length=bounds.EMAIL)
    occurred_at: AwareDatetime
    source: str = Field(min_length=1, max_length=bounds.SIGNAL_SOURCE)
    detail: str | None = Field(default=None, max_length=bounds.SIGNAL_DETAIL)


class LeadSnapshot(Event):
    """The whole lead as the sequencer holds it; the read model is a projection of this."""

    lead_id: uuid.UUID
    tenant_id: uuid.UUID
    state: LeadState
    source: OrderSource
    version: int = Field(ge=0)
    shopmonkey_order_id: RecordId | None = None
    order_number: str | None = Field(default=None, max_length=bounds.ORDER_NUMBER)
    customer: Customer = Field(default_factory=Customer)
    vehicle: str | None = Field(default=None, max_length=bounds.VEHICLE)
    services: list[ServiceName] = Field(default_factory=list, max_length=bounds.SERVICES)
    lost_reason: str | None = Field(default=None, max_length=bounds.LEAD_REASON)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    last_touch_at: AwareDatetime | None = None
    touches_sent: int = 0
    email_opted_out: bool = False
    sms_opted_out: bool = False
    sequence_stopped: bool = False
    #: declined work (the declined-work campaign's subject): the declined or deferred services
    #: of the lead's invoiced order, how many and their value
    declined_services: int = Field(default=0, ge=0)
    declined_cents: int = Field(default=0, ge=0, le=bounds.MAX_CENTS)
    #: of those, the ones a later order of the customer revived (brought back), value as
    #: declined
    revived_services: int = Field(default=0, ge=0)
    revived_cents: int = Field(default=0, ge=0, le=bounds.MAX_CENTS)


class LeadChanged(Event):
    """A lead's transition with its full snapshot (leads.lead-changes.v1)."""

    topic: ClassVar[str] = LEAD_CHANGES
    schema_version: Literal[1] = 1
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    from_state: LeadState | None
    to_state: LeadState
    reason: str = Field(max_length=bounds.LEAD_REASON)
    changed_at: AwareDatetime
    lead: LeadSnapshot


CONTRACTS: dict[str, type[Event]] = {
    "OrderEvent": OrderEvent,
    "TouchPointCommand": TouchPointCommand,
    "TouchPointOutcome": TouchPointOutcome,
    "ContactSignal": ContactSignal,
    "LeadChanged": LeadChanged,
}
