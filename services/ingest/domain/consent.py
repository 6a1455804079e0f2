"""Consent records out of a Shopmonkey customer record or a website form (pure).

A customer record gives one record per email (`subscribed`) and per phone (`optIn`,
`optInVerifiedDate`, `type`), each with the customer's `marketingOptIn` and
`preferredContactMethod`; what is absent stays None (unknown, never consent; see
`services.common.domain.consent` for how the gate and the store read absence). Contacts are
normalised the way the gate looks them up (lower-cased email, E.164 phone); an entry that is no
email or no valid number is left out. The same contact twice in one record keeps the stricter
flag (a False beats a True).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from schemas import bounds
from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, preferred_channel
from services.common.phones import normalize_phone
from services.common.whitelist import normalize_email
from services.ingest.domain.normalise import change_time, parse_ts

#: At most this many emails and phones of one record are read (bounded input).
MAX_ENTRIES = 20
SHOPMONKEY = "shopmonkey"
WEBSITE = "website"


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _stricter(a: bool | None, b: bool | None) -> bool | None:
    if False in (a, b):
        return False
    return True if True in (a, b) else None


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or "@" not in value or len(value) > bounds.EMAIL:
        return None
    return normalize_email(value)


def _line_type(value: Any) -> str | None:
    return value.strip().lower()[:20] or None if isinstance(value, str) else None


def consent_of_customer(
    data: Mapping[str, Any], *, event_key: str, now: datetime
) -> list[ConsentRecord]:
    """Every email's and phone's consent in a customer record (as of its change time)."""
    changed = change_time(data) or now
    rid = data.get("id")
    common: dict[str, Any] = {
        "source": SHOPMONKEY,
        "changed_at": changed,
        "event_key": event_key[:300],
        "customer_id": str(rid)[: bounds.RECORD_ID] if isinstance(rid, str | int) else None,
        "marketing_opt_in": _flag(data.get("marketingOptIn")),
        "preferred": preferred_channel(data.get("preferredContactMethod")),
    }
    found: dict[tuple[Channel, str], ConsentRecord] = {}

    def add(record: ConsentRecord) -> None:
        key = (record.channel, record.contact)
        if (old := found.get(key)) is not None:
            landline = "landline" in (old.line_type, record.line_type)
            record = replace(
                record,
                opted_in=_stricter(old.opted_in, record.opted_in),
                line_type="landline" if landline else record.line_type or old.line_type,
                verified_at=record.verified_at or old.verified_at,
            )
        found[key] = record

    emails, phones = data.get("emails"), data.get("phoneNumbers")
    for entry in emails[:MAX_ENTRIES] if isinstance(emails, list) else ():
        if isinstance(entry, dict) and (email := _email(entry.get("email"))):
            add(
                ConsentRecord(
                    Channel.EMAIL, email, opted_in=_flag(entry.get("subscribed")), **common
                )
            )
    for entry in phones[:MAX_ENTRIES] if isinstance(phones, list) else ():
        number = entry.get("number") if isinstance(entry, dict) else None
        if isinstance(number, str) and len(number) <= 40 and (phone := normalize_phone(number)):
            add(
                ConsentRecord(
                    Channel.SMS,
                    phone,
                    opted_in=_flag(entry.get("optIn")),
                    line_type=_line_type(entry.get("type")),
                    verified_at=parse_ts(entry.get("optInVerifiedDate")),
                    **common,
                )
            )
    return list(found.values())


def consent_of_order(
    data: Mapping[str, Any], *, event_key: str, now: datetime
) -> list[ConsentRecord]:
    """An order's embedded `customer` record, if it carries one."""
    embedded = data.get("customer")
    if not isinstance(embedded, dict):
        return []
    return consent_of_customer(embedded, event_key=event_key, now=now)
