"""Values the outbound core works with: a tenant's profile, ledger rows, messages, receipts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord
from services.common.domain.send_windows import SendWindowPolicy, WeeklyHours


@dataclass(frozen=True, slots=True)
class TenantProfile:
    """What outbound needs of a location: windows, address for CAN-SPAM, template data."""

    id: uuid.UUID
    name: str
    timezone: str
    active: bool
    us_state: str | None = None
    postal_address: str | None = None
    phone: str | None = None
    hours: WeeklyHours = field(default_factory=dict)
    catalog: tuple[str, ...] = ()
    review_url: str | None = None  # where a review request sends the customer
    closed_days: frozenset[date] = frozenset()  # holidays: no window opens

    @property
    def policy(self) -> SendWindowPolicy:
        return SendWindowPolicy.for_location(
            timezone=self.timezone,
            us_state=self.us_state,
            location_hours=self.hours or None,
            closed_days=self.closed_days,
        )


class LedgerStatus(StrEnum):
    CLAIMED = "claimed"
    SENT = "sent"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    FAILED = "failed"
    UNKNOWN = "unknown"
    RECORDED = "recorded"


#: Rows that count against the frequency cap: sent, possibly sent, or being sent.
CAP_STATUSES = (LedgerStatus.SENT, LedgerStatus.CLAIMED, LedgerStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    command_id: uuid.UUID
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    step_index: int
    channel: Channel
    status: LedgerStatus
    claimed_at: datetime
    recipient: str | None = None
    reason: str | None = None
    provider: str | None = None
    provider_message_id: str | None = None
    deferred_until: datetime | None = None
    due_at: datetime | None = None
    record_only: bool = False
    attempts: int = 0
    decided_at: datetime | None = None  # when the row got its final status
    campaign: str | None = None  # the command's campaign run (None: the nurture plan)


@dataclass(frozen=True, slots=True)
class GateFacts:
    """What PostgreSQL knows about the recipient, read in the claim's round trip (and again
    before every retry): suppressed, messages it got lately, and whether the lead opted out of
    the channel since the command was issued (the read model's opt-out flags)."""

    suppressed: bool = False
    recent_sends: int = 0
    lead_opted_out: bool = False
    #: The source's consent for the recipient on the command's channel (None: none recorded).
    consent: ConsentRecord | None = None
    #: ... and for the lead's contact on the other channel (whether a preference for it can be
    #: honoured, `consent_refusal`).
    other_consent: ConsentRecord | None = None
    #: Another campaign's message went to this customer (either contact) today, the location's
    #: day: the frequency cap across campaigns defers this one to tomorrow.
    other_campaign_today: bool = False
    #: A review request (from another order) went to this customer in the last 90 days.
    review_recent: bool = False


@dataclass(frozen=True, slots=True)
class Claimed:
    """This process owns the command now; nothing was sent for it yet (or it was reclaimed)."""

    facts: GateFacts
    reclaimed: bool = False


@dataclass(frozen=True, slots=True)
class AlreadyClaimed:
    """The ledger holds the command already: never send it again."""

    row: LedgerRow


ClaimResult = Claimed | AlreadyClaimed


@dataclass(frozen=True, slots=True)
class EmailMessage:
    command_id: uuid.UUID
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    to: str
    from_email: str
    from_name: str | None
    subject: str
    text: str
    html: str
    unsubscribe_url: str
    chat_link: str

    @property
    def recipient(self) -> str:
        return self.to


@dataclass(frozen=True, slots=True)
class SmsMessage:
    command_id: uuid.UUID
    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    to: str
    body: str
    validity_seconds: int
    chat_link: str
    #: The number the safety gate approved; the Twilio sender sends only when `to` equals it.
    approved_to: str | None = None

    @property
    def recipient(self) -> str:
        return self.to


OutboundMessage = EmailMessage | SmsMessage


@dataclass(frozen=True, slots=True)
class Probe:
    """What reconciliation asks a provider about: our id, the address, the lead's chat link."""

    command_id: uuid.UUID
    recipient: str
    chat_link: str

    @classmethod
    def of(cls, message: OutboundMessage) -> Probe:
        return cls(message.command_id, message.recipient, message.chat_link)


@dataclass(frozen=True, slots=True)
class Found:
    """Reconciliation: the provider holds the message (it was sent)."""

    provider_message_id: str


@dataclass(frozen=True, slots=True)
class NotFound:
    """Reconciliation: the provider certainly holds no such message."""


@dataclass(frozen=True, slots=True)
class Unverifiable:
    """Reconciliation: the provider cannot tell (yet, or at all)."""

    reason: str
    retry_later: bool = False


Lookup = Found | NotFound | Unverifiable
