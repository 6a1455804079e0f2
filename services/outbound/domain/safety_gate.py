"""The fail-closed outbound safety gate (DESIGN §6), a pure function of its inputs.

It is applied to every command right before any provider call, record-only replays included.
There is no input that loosens it: no flag, not DEMO_MODE, not a replay. Checks run in this
order, and the first that fails decides:

1. whitelist empty                         → skipped `whitelist_empty` (nothing is ever sent)
2. lead has no email                       → skipped `no_email` (so never an SMS either)
3. email not whitelisted (exact match after trim, quote removal, lower-case)
                                           → skipped `not_whitelisted` (SMS included)
4. channel's provider not configured       → skipped `email_disabled` / `sms_disabled`
5. tenant unknown or inactive              → skipped `unknown_tenant` / `tenant_inactive`
6. no phone for SMS / no postal address for email (CAN-SPAM)
                                           → skipped `no_phone` / `no_postal_address`
6a. SMS is bound to its recipient too (stricter than the seed, never looser; DESIGN §6 4a):
   the phone is not a valid number (libphonenumber)      → skipped `invalid_phone`
   its region is not in SMS_ALLOWED_REGIONS              → skipped `phone_region`
   LEAD_PHONE_WHITELIST is empty                         → skipped `phone_whitelist_empty`
   the number (E.164, exact) is not on it                → skipped `phone_not_whitelisted`
6b. consent recorded at the source (DESIGN §6 4b; `services.common.domain.consent`), read
   from PostgreSQL at decision time, after the whitelist and never instead of it:
   SMS to a number whose type is Landline                → skipped `landline`
   the customer prefers the other channel and the source's consent allows it there
   (SMS: a recorded opt-in, not a landline; email: not unsubscribed); a preference
   for a channel the customer cannot be reached on skips nothing
                                                         → skipped `contact_preference`
   SMS without a recorded opt-in (no record is none)     → skipped `sms_no_consent`
   email to an address the source marks unsubscribed    → skipped `email_unsubscribed`
7. lead opted out / contact suppressed     → skipped `lead_opted_out` / `suppressed` (at any
                                             location of the tenant's company, or globally)
8. outside the channel's send window       → deferred to the next opening
8a. campaigns (DESIGN §12): a review request to a customer who got one (another order's)
   within 90 days                                        → skipped `review_recent`
   another campaign's message went to this customer (email or phone) today, the
   location's day; the estimate nurture plan counts as a campaign
                                                         → deferred `campaign_cap` to tomorrow
9. frequency cap reached for the contact   → skipped `frequency_cap` (sends of every location
                                             of the tenant's company count, ledger_pg); a
                                             campaign's step (declined work, review,
                                             appointment) is deferred `frequency_cap` by the
                                             cap's window instead: it waits, it is not lost
otherwise                                  → send (`whitelisted`); an SMS decision names the
                                             number it approved (`recipient`), which the
                                             Twilio sender checks again before it sends
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, consent_refusal
from services.common.domain.send_windows import SendWindowPolicy, next_opening
from services.common.phones import normalize_phone, parse_phone
from services.common.whitelist import normalize_email
from services.outbound.domain.model import TenantProfile


class Verdict(StrEnum):
    SEND = "send"
    SKIP = "skip"
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class TenantGateView:
    """The tenant facts the gate needs (None for the whole view = unknown tenant)."""

    active: bool
    policy: SendWindowPolicy
    has_postal_address: bool


@dataclass(frozen=True, slots=True)
class GateInput:
    channel: Channel
    email: str | None
    phone: str | None
    whitelist: frozenset[str]
    email_configured: bool
    sms_configured: bool
    tenant: TenantGateView | None
    now: datetime
    suppressed: bool = False
    recent_sends: int = 0
    frequency_cap: int = 1  # 0 = no cap
    opted_out: bool = False
    #: LEAD_PHONE_WHITELIST (E.164): empty means no SMS at all.
    phone_whitelist: frozenset[str] = frozenset()
    #: SMS_ALLOWED_REGIONS (ISO 3166 alpha-2 codes).
    sms_regions: frozenset[str] = frozenset({"US", "CA"})
    #: The source's consent for this contact and channel (None: none recorded).
    consent: ConsentRecord | None = None
    #: The source's consent for the lead's contact on the other channel (read only to tell
    #: whether a preference for that channel can be honoured; None: none recorded).
    other_consent: ConsentRecord | None = None
    #: Another campaign's message went to this customer today (the location's day).
    other_campaign_today: bool = False
    #: This is a review request and the customer got one (another order's) within 90 days.
    review_recent: bool = False
    #: A campaign's step (not the estimate nurture's): the frequency cap defers it.
    campaign_step: bool = False
    #: The frequency cap's window (FREQUENCY_WINDOW_HOURS): how long a deferred step waits.
    frequency_window: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reason: str
    whitelisted: bool = False
    deferred_until: datetime | None = None
    #: The E.164 number an SMS decision approved (None for email and for skips).
    recipient: str | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.SEND


def _skip(reason: str, *, whitelisted: bool = False) -> Decision:
    return Decision(Verdict.SKIP, reason, whitelisted=whitelisted)


def contact_for(channel: Channel, email: str | None, phone: str | None) -> str | None:
    """The normalised address a channel delivers to (the ledger's `recipient`)."""
    return normalize_email(email) if channel is Channel.EMAIL else normalize_phone(phone)


def other_contact_for(channel: Channel, email: str | None, phone: str | None) -> str | None:
    """The lead's normalised address on the other channel (whose consent tells whether a
    preference for that channel can be honoured)."""
    other = Channel.SMS if channel is Channel.EMAIL else Channel.EMAIL
    return contact_for(other, email, phone)


def gate_view(tenant: TenantProfile | None) -> TenantGateView | None:
    """What the gate reads of a tenant's profile (None: the tenant is unknown)."""
    if tenant is None:
        return None
    return TenantGateView(
        active=tenant.active, policy=tenant.policy, has_postal_address=bool(tenant.postal_address)
    )


def opted_out(channel: Channel, context: Mapping[str, Any]) -> bool:
    """The command's context says the lead opted out of everything, or of this channel."""
    key = "email_opted_out" if channel is Channel.EMAIL else "sms_opted_out"
    return context.get("opted_out") is True or context.get(key) is True


#: A campaign step the frequency cap defers waits its window and this much more: a send
#: counts while it is inside the window (inclusive), and the step may come back early by the
#: clock skew the ledger allows (DEFER_SKEW, a minute); deferred to the window's very end it
#: would find the send still counted and wait a whole window again.
CAP_DEFER_MARGIN = timedelta(minutes=2)


def decide(gate: GateInput) -> Decision:
    """Decide one touch point. Pure: same input, same decision."""
    if not gate.whitelist:
        return _skip("whitelist_empty")
    email = normalize_email(gate.email)
    if email is None:
        return _skip("no_email")
    if email not in gate.whitelist:
        return _skip("not_whitelisted")
    # From here on the lead's email is whitelisted.
    if gate.channel is Channel.EMAIL and not gate.email_configured:
        return _skip("email_disabled", whitelisted=True)
    if gate.channel is Channel.SMS and not gate.sms_configured:
        return _skip("sms_disabled", whitelisted=True)
    if gate.tenant is None:
        return _skip("unknown_tenant", whitelisted=True)
    if not gate.tenant.active:
        return _skip("tenant_inactive", whitelisted=True)
    approved = None
    if gate.channel is Channel.SMS:
        refusal, approved = _phone_refusal(gate)
        if refusal is not None:
            return _skip(refusal, whitelisted=True)
    if (refused := consent_refusal(gate.channel, gate.consent, gate.other_consent)) is not None:
        return _skip(refused, whitelisted=True)
    if gate.channel is Channel.EMAIL and not gate.tenant.has_postal_address:
        return _skip("no_postal_address", whitelisted=True)
    if gate.opted_out:
        return _skip("lead_opted_out", whitelisted=True)
    if gate.suppressed:
        return _skip("suppressed", whitelisted=True)
    try:
        opening = next_opening(gate.channel, gate.now, gate.tenant.policy)
    except ValueError:
        return _skip("no_send_window", whitelisted=True)
    if opening > gate.now:
        return Decision(Verdict.DEFER, "outside_send_window", True, opening)
    if gate.review_recent:
        return _skip("review_recent", whitelisted=True)
    if gate.other_campaign_today:  # one campaign a day per customer: tomorrow, not never
        tomorrow = next_local_day(gate.now, gate.tenant.policy.timezone)
        return Decision(Verdict.DEFER, "campaign_cap", True, tomorrow)
    if gate.frequency_cap and gate.recent_sends >= gate.frequency_cap:
        if gate.campaign_step:  # by then every send it counted has left the window
            until = gate.now + gate.frequency_window + CAP_DEFER_MARGIN
            return Decision(Verdict.DEFER, "frequency_cap", True, until)
        return _skip("frequency_cap", whitelisted=True)
    return Decision(Verdict.SEND, "whitelisted", whitelisted=True, recipient=approved)


def next_local_day(now: datetime, timezone: str) -> datetime:
    """The start of the day after `now`'s, in `timezone` (as UTC)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone)
    return start.astimezone(UTC)


def _phone_refusal(gate: GateInput) -> tuple[str | None, str | None]:
    """(why the SMS may not go to this number, or None; the approved E.164 number)."""
    if not gate.phone or not gate.phone.strip():
        return "no_phone", None
    phone = parse_phone(gate.phone)
    if phone is None:
        return "invalid_phone", None
    if phone.region not in gate.sms_regions:
        return "phone_region", None
    if not gate.phone_whitelist:
        return "phone_whitelist_empty", None
    if phone.e164 not in gate.phone_whitelist:
        return "phone_not_whitelisted", None
    return None, phone.e164
