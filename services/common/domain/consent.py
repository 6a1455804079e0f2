"""Consent as its source recorded it, per contact and channel (pure).

Shopmonkey's customer record carries `marketingOptIn`, `preferredContactMethod`, each email's
`subscribed` and each phone's `optIn`, `optInVerifiedDate` and `type` (reference §3, from the
2023 data model, not re-checked against the current API). A website form carries explicit
`consentSms` / `consentEmail` with the consent text's version and time. Ingest turns either
into `ConsentRecord`s (one per contact and channel); the outbound gate reads the record of the
contact it is about to message (and the record of the lead's contact on the other channel)
and `consent_refusal` says why it may not.

`preferredContactMethod` orders the channels and never leaves a customer with nothing: a touch
on one channel is skipped (`contact_preference`) only when the customer prefers the other one
and the source's consent allows a message there (SMS: a recorded opt-in, not a landline; email:
not unsubscribed). Otherwise the touch goes ahead, subject to every other check.

Both readings of what the reference could not confirm are honoured, fail-closed:
- a field may be absent from current responses: absent is "unknown" (None), never consent;
- `marketingOptIn` may be *the* SMS opt-in (Shopmonkey's help centre calls it the TCPA SMS
  opt-in) or a general marketing flag beside the phone's `optIn`: an SMS needs a `True` from
  one of them and a `False` from neither;
- a webhook body may be the whole record or only what changed: an absent field never lifts a
  recorded refusal (`merge`: a `False` stays until the source says `True`; a landline or a
  channel preference stays until the source says otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from schemas.base import Channel

#: The gate's consent reasons, in the order it checks them.
LANDLINE = "landline"
CONTACT_PREFERENCE = "contact_preference"
SMS_NO_CONSENT = "sms_no_consent"
EMAIL_UNSUBSCRIBED = "email_unsubscribed"


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    """What a source said about one contact on one channel at `changed_at`."""

    channel: Channel
    contact: str  # lower-cased email or E.164 phone
    source: str  # "shopmonkey" | "website"
    changed_at: datetime
    event_key: str
    customer_id: str | None = None
    #: email: `subscribed` / `consentEmail`; sms: the phone's `optIn` / `consentSms`.
    opted_in: bool | None = None
    marketing_opt_in: bool | None = None
    #: "sms" | "email" (the customer asked for that channel; honoured when its consent allows
    #: it, see `consent_refusal`); "all": the customer said either; None: not said.
    preferred: str | None = None
    #: the phone's `type`, lower-cased ("mobile", "landline", "voip", "other").
    line_type: str | None = None
    verified_at: datetime | None = None
    text_version: str | None = None
    consented_at: datetime | None = None

    def evidence(self) -> dict[str, Any]:
        """The record as JSON-ready values (kept with each gate decision, shown to operators)."""
        # every field is a scalar: no deep copy (asdict's) needed, a tenth of its cost
        out = {name: getattr(self, name) for name in _FIELDS}
        out["channel"] = self.channel.value
        for key in ("changed_at", "verified_at", "consented_at"):
            value = out[key]
            out[key] = value.isoformat() if isinstance(value, datetime) else None
        return out


_FIELDS = tuple(f.name for f in fields(ConsentRecord))


def from_evidence(doc: dict[str, Any]) -> ConsentRecord:
    """The record back from `evidence()` (or PostgreSQL's `to_jsonb` of a row)."""

    def when(key: str) -> datetime | None:
        value = doc.get(key)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    changed = when("changed_at")
    assert changed is not None, "a consent record always has its change time"
    return ConsentRecord(
        channel=Channel(doc["channel"]),
        contact=str(doc["contact"]),
        source=str(doc["source"]),
        changed_at=changed,
        event_key=str(doc["event_key"]),
        customer_id=doc.get("customer_id"),
        opted_in=doc.get("opted_in"),
        marketing_opt_in=doc.get("marketing_opt_in"),
        preferred=doc.get("preferred"),
        line_type=doc.get("line_type"),
        verified_at=when("verified_at"),
        text_version=doc.get("text_version"),
        consented_at=when("consented_at"),
    )


def merge(old: ConsentRecord | None, new: ConsentRecord) -> ConsentRecord:
    """What is stored after `new` arrives (the SQL upsert does the same; a unit test holds
    both to it). An older record changes nothing; absence never lifts a refusal."""
    if old is None:
        return new
    if new.changed_at < old.changed_at:
        return old
    return replace(
        new,
        opted_in=False if new.opted_in is None and old.opted_in is False else new.opted_in,
        marketing_opt_in=(
            False
            if new.marketing_opt_in is None and old.marketing_opt_in is False
            else new.marketing_opt_in
        ),
        preferred=new.preferred if new.preferred is not None else old.preferred,
        line_type=new.line_type if new.line_type is not None else old.line_type,
    )


def sms_consented(record: ConsentRecord | None) -> bool:
    """A recorded SMS opt-in: a `True` from the phone (or form) or from `marketingOptIn`, and
    a `False` from neither. No record: no consent."""
    if record is None:
        return False
    flags = (record.opted_in, record.marketing_opt_in)
    return True in flags and False not in flags


def usable(channel: Channel, record: ConsentRecord | None) -> bool:
    """The source's consent alone would allow a message on `channel` to this contact: SMS a
    recorded opt-in to a number not marked landline, email an address not marked unsubscribed
    (no email record is no refusal). Nothing else (whitelists, suppressions, windows) is read."""
    if channel is Channel.SMS:
        return sms_consented(record) and (record is None or record.line_type != "landline")
    return record is None or record.opted_in is not False


def _prefers_other(
    channel: Channel, record: ConsentRecord | None, other: ConsentRecord | None
) -> bool:
    """The customer asked for the other channel, and the source's consent allows it there.

    `preferredContactMethod` orders the channels, it never leaves a customer with nothing: a
    preference for a channel the customer cannot be reached on by consent (no SMS opt-in, a
    landline, an unsubscribed address) skips nothing, nor does one the other channel's record
    contradicts (each record asking for the other channel)."""
    wanted = Channel.EMAIL if channel is Channel.SMS else Channel.SMS
    if record is None or record.preferred != wanted.value:
        return False
    if other is not None and other.preferred == channel.value:
        return False  # the two records disagree: no order is honoured, neither gives way
    return usable(wanted, other)


def consent_refusal(
    channel: Channel, record: ConsentRecord | None, other: ConsentRecord | None = None
) -> str | None:
    """Why the source's consent forbids this touch (None: it allows it).

    `record` is the consent of the contact this touch goes to, `other` the consent of the
    same lead's contact on the other channel (its phone for an email touch, its address for
    an SMS), read only to tell whether a preference for that channel can be honoured."""
    if channel is Channel.SMS:
        if record is not None and record.line_type == "landline":
            return LANDLINE
        if _prefers_other(channel, record, other):
            return CONTACT_PREFERENCE
        return None if sms_consented(record) else SMS_NO_CONSENT
    if record is None:
        return None  # email: no record is no refusal (the unsubscribe link stays the way out)
    if record.opted_in is False:
        return EMAIL_UNSUBSCRIBED
    if _prefers_other(channel, record, other):
        return CONTACT_PREFERENCE
    return None


def preferred_channel(value: Any) -> str | None:
    """`preferredContactMethod` (`SMS | Email | All`) as "sms"/"email"/"all"; anything else
    None. "all" is said, not absent: it lifts an earlier preference (`merge`)."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if text in ("sms", "email", "all") else None
