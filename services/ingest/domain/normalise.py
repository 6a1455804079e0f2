"""Shopmonkey order/customer records → OrderEvent (pure; the same for webhook and poll).

`event_id` = `shopmonkey:{table}:{id}:{version}` where version is `data.meta.version` (the
row's monotonically increasing version, reference §1.4). When a record carries no version, the
record's change time stands in for it (`updatedDate`, else `createdDate`, as UTC ISO-8601
with milliseconds), which both paths also see identically; a DELETE with neither uses
`deleted`. So a webhook delivery, its retries and the poller's read of the same version all
yield the same `event_id`, and the same order always yields the same `lead_id` (DESIGN §3).

Every value is built here with its contract's type and within its bound (schemas/bounds.py):
texts are `str` without NUL characters, times aware UTC, ids bounded by `record_id`. A display
text (names, vehicle, status, order number, services) is never a reason to refuse a record: it
is cut to its bound; an id over its bound is refused (400); an email or phone that cannot be
one is dropped to None. Each such change is noted in `adjusted` (field, reason) for the caller
to count and log. So events are assembled as drafts (`draft.py`: the fields, serialised
without a model) or with `trusted` instead of being validated a second time; a property test
checks, for arbitrary records, that validating what this module builds changes nothing, neither
a value nor a byte on the topic.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from schemas import bounds
from schemas.base import LeadIdKey, lead_id_for_order
from schemas.events import Operation, OrderSource, ServiceAuthorization
from services.common.domain.consent import preferred_channel
from services.common.phones import normalize_phone
from services.ingest.domain.draft import Contact, OrderEventDraft
from services.ingest.domain.envelope import record_id
from services.ingest.errors import InvalidPayload

#: (field, reason) of every value the normaliser cut or dropped, for the caller to count.
Adjusted = list[tuple[str, str]]


def parse_ts(value: Any) -> datetime | None:
    """An ISO-8601 timestamp as an aware UTC datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def change_time(data: Mapping[str, Any]) -> datetime | None:
    """When the record last changed: `updatedDate`, else `createdDate` (new rows may have
    a null `updatedDate`, reference §1.6)."""
    return parse_ts(data.get("updatedDate")) or parse_ts(data.get("createdDate"))


_INT64_MAX = 2**63 - 1


def _cents(value: Any) -> int:
    """An amount in cents; 0 when absent, not a number, not finite or beyond 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float):
        if not math.isfinite(value):
            return 0
        value = int(value)
    return value if -_INT64_MAX <= value <= _INT64_MAX else 0


def version_of(data: Mapping[str, Any]) -> int | None:
    meta = data.get("meta")
    value = meta.get("version") if isinstance(meta, dict) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value <= _INT64_MAX else None
    if isinstance(value, str):  # ASCII digits within 64 bits (int() would take "²", huge)
        digits = value.strip()
        if digits.isascii() and digits.isdigit() and len(digits) <= 19:
            return number if (number := int(digits)) <= _INT64_MAX else None
    return None


class Facts(NamedTuple):
    """What both the event id and the event's fields need of a record, read once."""

    rid: str
    version: int | None
    updated: datetime | None
    created: datetime | None
    event_id: str


def facts_of(
    table: str, data: Mapping[str, Any], operation: Operation, *, rid: str | None = None
) -> Facts:
    """`rid`: the record's id when the caller already validated it (`Envelope.rid`)."""
    rid = record_id(data) if rid is None else rid
    version = version_of(data)
    updated = parse_ts(data.get("updatedDate"))
    created = parse_ts(data.get("createdDate"))
    event_id = _event_id(table, data, operation, rid, version, updated or created)
    return Facts(rid, version, updated, created, event_id)


def _event_id(
    table: str,
    data: Mapping[str, Any],
    operation: Operation,
    rid: str,
    version: int | None,
    changed: datetime | None,
) -> str:
    if version is not None:
        marker = str(version)
    elif changed is not None:
        marker = iso_z(changed)
    elif operation is Operation.DELETE:
        marker = "deleted"
    else:  # nothing to tell versions apart: the content itself
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
        marker = "h" + hashlib.sha256(canonical.encode()).hexdigest()[:24]
    return f"shopmonkey:{table}:{rid}:{marker}"


def _pick(entries: Any, value_key: str, prefer: tuple[str, str] | None = None) -> str | None:
    """The primary entry of `emails[]`/`phoneNumbers[]`, else a preferred type, else the first
    (entries whose value is not a non-blank string do not count)."""
    if not isinstance(entries, list):
        return None
    first = preferred = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        value = entry.get(value_key)
        if not isinstance(value, str) or not (value := value.strip()):
            continue
        if entry.get("primary") is True:
            return value
        if first is None:
            first = value
        if preferred is None and prefer is not None and entry.get(prefer[0]) == prefer[1]:
            preferred = value
    return first if preferred is None else preferred


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _display(value: Any, limit: int, name: str, adjusted: Adjusted | None) -> str | None:
    """A display text: stripped, without NUL characters (PostgreSQL refuses them), cut to
    `limit`. A scan for NUL and a length check on the usual path."""
    if not isinstance(value, str) or not (text := value.strip()):
        return None
    if "\x00" in text:
        text = text.replace("\x00", "").strip()
        _note(adjusted, name, "nul_removed")
        if not text:
            return None
    if len(text) > limit:
        text = text[:limit]
        _note(adjusted, name, "cut")
    return text


def _note(adjusted: Adjusted | None, name: str, reason: str) -> None:
    if adjusted is not None:
        adjusted.append((name, reason))


def _id_text(value: Any, name: str) -> str | None:
    """An id (string or integer): refused (400) when over its bound or holding a NUL."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value)
    if len(text) > bounds.RECORD_ID:
        raise InvalidPayload(f"{name} is longer than {bounds.RECORD_ID} characters")
    if "\x00" in text:
        raise InvalidPayload(f"{name} contains a NUL character")
    return text


def _email(value: str | None, adjusted: Adjusted | None) -> str | None:
    """An address as written, or None when it cannot be one (too long, NUL, no @)."""
    if value is None:
        return None
    if len(value) > bounds.EMAIL or "\x00" in value or "@" not in value:
        _note(adjusted, "email", "invalid_email")
        return None
    return value


def _phone(value: str | None, adjusted: Adjusted | None) -> str | None:
    """The E.164 form of a valid number, else None (noted)."""
    if value is None:
        return None
    phone = normalize_phone(value)
    if phone is None:
        _note(adjusted, "phone", "invalid_phone")
    return phone


def contact_of_record(data: Mapping[str, Any], adjusted: Adjusted | None = None) -> Contact:
    """A Shopmonkey customer record's fields (top-level `email`/`phone` are null in v3: the
    contact details live in `emails[]` and `phoneNumbers[]`, reference §2.5)."""
    get = data.get
    email = _text(get("email")) or _pick(get("emails"), "email")
    phone = _text(get("phone")) or _pick(get("phoneNumbers"), "number", prefer=_MOBILE)
    return {
        "customer_id": _id_text(get("id"), "customer id"),
        "first_name": _display(get("firstName"), bounds.NAME, "first_name", adjusted),
        "last_name": _display(get("lastName"), bounds.NAME, "last_name", adjusted),
        "email": _email(email, adjusted),
        "phone": _phone(phone, adjusted),
        "preferred": preferred_channel(get("preferredContactMethod")),
    }


_MOBILE = ("type", "Mobile")


def contact_of_order(data: Mapping[str, Any], adjusted: Adjusted | None = None) -> Contact:
    """What the order itself says about its customer (an embedded `customer` if present)."""
    embedded = data.get("customer")
    if isinstance(embedded, dict):
        base = contact_of_record(embedded, adjusted)
        if base["first_name"] and base["last_name"] and base["customer_id"]:
            return base  # the order's own name fields would not count
    else:
        base = _NO_CONTACT
    first = last = None
    name = _text(data.get("generatedCustomerName"))
    if name:
        first, _, rest = name.partition(" ")
        first = _display(first, bounds.NAME, "first_name", adjusted)
        last = _display(rest, bounds.NAME, "last_name", adjusted)
    return {
        "customer_id": base["customer_id"] or _id_text(data.get("customerId"), "customerId"),
        "first_name": base["first_name"] or first,
        "last_name": base["last_name"] or last,
        "email": base["email"],
        "phone": base["phone"],
        "preferred": base["preferred"],
    }


_NO_CONTACT: Contact = dict.fromkeys(
    ("customer_id", "first_name", "last_name", "email", "phone", "preferred")
)


def contact_lacks(contact: Contact) -> bool:
    """Email or phone missing (a look-up of the customer record may complete it)."""
    return contact["email"] is None or contact["phone"] is None


def merge_contact(known: Contact, fetched: Contact | None) -> Contact:
    """Fetched values (the customer record itself) win over what the order carried."""
    if fetched is None:
        return known
    return {
        "customer_id": known["customer_id"] or fetched["customer_id"],
        "first_name": fetched["first_name"] or known["first_name"],
        "last_name": fetched["last_name"] or known["last_name"],
        "email": fetched["email"] or known["email"],
        "phone": fetched["phone"] or known["phone"],
        "preferred": fetched["preferred"] or known["preferred"],
    }


def _services(value: Any, adjusted: Adjusted | None) -> list[str]:
    """The order's service names, each cut to its bound, at most `bounds.SERVICES` of them."""
    if not isinstance(value, list):
        return []
    names: list[str] = []
    for entry in value:
        if isinstance(entry, dict) and (
            name := _display(entry.get("name"), bounds.SERVICE, "services", adjusted)
        ):
            if len(names) == bounds.SERVICES:
                _note(adjusted, "services", "cut")
                break
            names.append(name)
    return names


#: `authorizationStatus` (reference §5), compared without case or underscores
_AUTHORIZATION = {
    "notauthorized": ServiceAuthorization.NOT_AUTHORIZED,
    "authorized": ServiceAuthorization.AUTHORIZED,
    "declined": ServiceAuthorization.DECLINED,
}
#: Entries of a `services` list looked at: a list longer than this is hostile, not an order.
_SERVICES_SCANNED = 10 * bounds.SERVICES


def _line_id(value: Any) -> str | None:
    """A service's id (or `revivedFromId`): None when absent, blank, not a string/integer, over
    its bound or holding a NUL (a service line is never a reason to refuse its order)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    if not text or len(text) > bounds.RECORD_ID or "\x00" in text:
        return None
    return text


def service_lines(value: Any, adjusted: Adjusted | None = None) -> list[dict[str, Any]]:
    """An order's Shopmonkey services (`services[]` embedded in the order, or the answer of
    `GET /v3/order/:id/service`) as ServiceLine fields, in the contract's order and bounds:
    - at most `bounds.SERVICES` lines, the first of each id; an entry without an id skipped,
      one whose id is unusable (over its bound, NUL, not a string/integer) skipped and noted;
    - an unknown `authorizationStatus`: None; an unusable `revivedFromId`: None (noted);
    - `deferred`: a `deferredReason` and not `excludedFromDeferred`;
    - a total that is no amount in cents (negative, not finite, beyond bigint, no number): 0.
    Each kind of change is noted once."""
    if not isinstance(value, list):
        return []
    lines: list[dict[str, Any]] = []
    seen: set[str] = set()
    notes: set[str] = set()
    for index, entry in enumerate(value):
        if index == _SERVICES_SCANNED or len(lines) == bounds.SERVICES:
            if lines:
                notes.add("cut")
            break
        if not isinstance(entry, dict) or entry.get("id") is None:
            continue  # a name-only entry (older bodies), or no service at all
        get = entry.get
        service_id = _line_id(get("id"))
        if service_id is None:
            notes.add("invalid_id")
            continue
        if service_id in seen:
            continue
        seen.add(service_id)
        status = get("authorizationStatus")
        reason = get("deferredReason")
        revived = get("revivedFromId")
        revived_from = _line_id(revived)
        if revived_from is None and revived is not None:
            notes.add("invalid_revived_from")
        total = get("totalCents")
        cents = _cents(total if total is not None else get("totalCostCents"))
        lines.append(
            {
                "service_id": service_id,
                "name": _display(get("name"), bounds.SERVICE, "service_lines", adjusted),
                "authorization": (
                    _AUTHORIZATION.get(status.strip().lower().replace("_", ""))
                    if isinstance(status, str)
                    else None
                ),
                "deferred": isinstance(reason, str)
                and bool(reason.strip())
                and get("excludedFromDeferred") is not True,
                "revived_from": revived_from,
                "total_cents": max(cents, 0),
            }
        )
    for note in sorted(notes):
        _note(adjusted, "service_lines", note)
    return lines


def _number(value: Any, adjusted: Adjusted | None) -> str | None:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return _display(str(value), bounds.ORDER_NUMBER, "number", adjusted)


def _snapshot(
    data: Mapping[str, Any],
    operation: Operation,
    facts: Facts,
    adjusted: Adjusted | None,
    fetched_services: Any = None,
) -> dict[str, Any]:
    """Every OrderSnapshot field in its order, each of its contract's type and bound; the
    service lines from the order's own `services` when it embeds them, else from
    `fetched_services` (`GET /v3/order/:id/service`, the poller's and the backfill's)."""
    get = data.get
    embedded = get("services")
    return {
        "order_id": facts.rid,
        "number": _number(get("number"), adjusted),
        "status": _display(get("status"), bounds.ORDER_STATUS, "status", adjusted) or "Estimate",
        "authorized": get("authorized") is True,
        "invoiced": get("invoiced") is True,
        "paid": get("paid") is True,
        "archived": get("archived") is True,
        "deleted": operation is Operation.DELETE or get("deleted") is True,
        "appointment_at": appointment_date(get("appointmentDates")),
        "total_cents": _cents(get("totalCostCents")),
        "vehicle": _display(get("generatedVehicleName"), bounds.VEHICLE, "vehicle", adjusted),
        "services": _services(embedded, adjusted),
        "service_lines": service_lines(
            embedded if isinstance(embedded, list) else fetched_services, adjusted
        ),
        "version": facts.version,
        "created_at": facts.created or parse_ts(get("orderCreatedDate")),
        "updated_at": facts.updated,
    }


def order_draft(
    tenant_id: uuid.UUID,
    data: Mapping[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    contact: Contact,
    now: datetime,
    ids: LeadIdKey,
    facts: Facts | None = None,
    adjusted: Adjusted | None = None,
    fetched_services: list[dict[str, Any]] | None = None,
) -> OrderEventDraft:
    """Each field of the record is read once. `now` must be aware (UTC); `ids`: the key lead
    ids are derived under. `facts`: the record's `facts_of`, when the caller already has
    them; `adjusted` collects the values cut or dropped; `fetched_services`: the order's
    services read from Shopmonkey (used when the order embeds none)."""
    if facts is None:
        facts = facts_of("order", data, operation)
    return _draft(
        facts,
        tenant_id,
        lead_id_for_order(ids, tenant_id, facts.rid),
        source,
        "order",
        operation,
        now,
        _snapshot(data, operation, facts, adjusted, fetched_services),
        contact,
    )


def appointment_order_id(data: Mapping[str, Any]) -> str | None:
    """An appointment's order (`orderId`, its lead's order): None when it names none (or not
    as an id); an id over its bound or holding a NUL is refused (400), as an order's is."""
    value = data.get("orderId")
    if isinstance(value, str):
        value = value.strip()
    if value is None or value == "":
        return None
    return _id_text(value, "orderId")


#: At most this many of an order's `appointmentDates` are read (bounded input).
MAX_APPOINTMENT_DATES = 20


def appointment_date(value: Any) -> datetime | None:
    """The latest readable date of an order's `appointmentDates` (its current booking; the
    reminder campaign's appointment when no appointment record says otherwise); None when
    there is none. Anything else in the list is ignored."""
    if not isinstance(value, list):
        return None
    dates = [d for d in map(parse_ts, value[:MAX_APPOINTMENT_DATES]) if d is not None]
    return max(dates, default=None)


def _appointment_cancelled(data: Mapping[str, Any], operation: Operation) -> bool:
    """DELETE, a deleted row, or a `cancelationNote` (Shopmonkey sets it when the appointment
    is cancelled; null otherwise)."""
    return (
        operation is Operation.DELETE
        or data.get("deleted") is True
        or isinstance(data.get("cancelationNote"), str)
    )


def appointment_unusable(data: Mapping[str, Any], operation: Operation) -> str | None:
    """Why an appointment record cannot be a lead's event (the webhook answers 2xx Ignored
    with it, the poller skips it), or None. Raises InvalidPayload for an `orderId` we refuse."""
    if appointment_order_id(data) is None:
        return "appointment without orderId: it belongs to no lead"
    if parse_ts(data.get("startDate")) is None and not _appointment_cancelled(data, operation):
        return "appointment without a readable startDate"
    return None


def _appointment(
    data: Mapping[str, Any],
    operation: Operation,
    facts: Facts,
    now: datetime,
    adjusted: Adjusted | None,
) -> dict[str, Any]:
    """Every Appointment field in its order. A cancellation without a readable `startDate` (a
    DELETE's body may be bare) starts at its change time: the contract needs a start, and a
    cancelled appointment is never reminded of."""
    start = parse_ts(data.get("startDate"))
    if start is None:
        start = facts.updated or facts.created or now
        _note(adjusted, "appointment", "start_missing")
    return {
        "appointment_id": facts.rid,
        "start_at": start,
        "end_at": parse_ts(data.get("endDate")),
        "cancelled": _appointment_cancelled(data, operation),
        "shopmonkey_reminder": data.get("sendReminder") is True,
        "version": facts.version,
    }


def appointment_draft(
    tenant_id: uuid.UUID,
    data: Mapping[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    contact: Contact,
    now: datetime,
    ids: LeadIdKey,
    facts: Facts | None = None,
    adjusted: Adjusted | None = None,
) -> OrderEventDraft:
    """An appointment change: the lead of its order (`lead_id_for_order` of its `orderId`, the
    same lead the order's events have). The caller checked `appointment_unusable` first."""
    if facts is None:
        facts = facts_of("appointment", data, operation)
    order_id = appointment_order_id(data)
    if order_id is None:
        raise InvalidPayload("appointment without orderId")
    draft = _draft(
        facts,
        tenant_id,
        lead_id_for_order(ids, tenant_id, order_id),
        source,
        "appointment",
        operation,
        now,
        None,
        contact,
    )
    draft.fields["appointment"] = _appointment(data, operation, facts, now, adjusted)
    return draft


def customer_draft(
    tenant_id: uuid.UUID,
    data: Mapping[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    contact: Contact,
    now: datetime,
    facts: Facts | None = None,
    adjusted: Adjusted | None = None,
) -> OrderEventDraft:
    """A customer change: no lead of its own (`lead_id` None), it updates every lead of it."""
    if facts is None:
        facts = facts_of("customer", data, operation)
    return _draft(facts, tenant_id, None, source, "customer", operation, now, None, contact)


def _draft(
    facts: Facts,
    tenant_id: uuid.UUID,
    lead_id: uuid.UUID | None,
    source: OrderSource,
    entity: str,
    operation: Operation,
    now: datetime,
    order: dict[str, Any] | None,
    contact: Contact,
) -> OrderEventDraft:
    """Every OrderEvent field, in the contract's order (`tests/unit/ingest` checks it)."""
    return OrderEventDraft(
        {
            "schema_version": 1,
            "event_id": facts.event_id,
            "tenant_id": tenant_id,
            "lead_id": lead_id,
            "source": source,
            "entity": entity,
            "operation": operation,
            "occurred_at": facts.updated or facts.created or now,
            "ingested_at": now,
            "order": order,
            "customer": contact,
            "service_of_interest": None,
            "plan_touchpoints": True,
            "appointment": None,
        }
    )


def polled_operation(data: Mapping[str, Any]) -> Operation:
    """The operation a polled record stands for (the REST API tells no operation)."""
    if data.get("deleted") is True:
        return Operation.DELETE
    updated = parse_ts(data.get("updatedDate"))
    if updated is None or updated == parse_ts(data.get("createdDate")):
        return Operation.INSERT
    return Operation.UPDATE
