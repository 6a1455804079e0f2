"""The Shopmonkey v3 webhook envelope (reference/shopmonkey.md §1.3), validated (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from schemas import bounds
from schemas.events import Operation
from services.ingest.errors import InvalidPayload

#: Tables that become OrderEvents; every other table is acknowledged and ignored.
INGESTED_TABLES = frozenset({"order", "customer", "appointment"})
_OPERATIONS = {"INSERT": Operation.INSERT, "UPDATE": Operation.UPDATE, "DELETE": Operation.DELETE}
_VERSION_TYPES = (str, int, float)
_ID_TYPES = (str, int)


class Envelope(NamedTuple):
    api_version: str
    operation: Operation
    table: str
    data: dict[str, Any]
    diff: tuple[str, ...] = ()
    #: `data.id`, validated, for the tables we ingest (None for the others)
    rid: str | None = None

    @property
    def record_id(self) -> str:
        return self.rid if self.rid is not None else record_id(self.data)


#: Longest record id accepted: ids are UUIDs in v3; `leads.shopmonkey_order_id` holds 100.
MAX_ID_LENGTH = bounds.RECORD_ID


def record_id(data: Mapping[str, Any]) -> str:
    """A record's `id` as a string (UUID strings in v3; integers tolerated)."""
    value = data.get("id")
    if (
        isinstance(value, bool)
        or not isinstance(value, _ID_TYPES)
        or not (rid := str(value).strip())
    ):
        raise InvalidPayload("data.id is missing or not a string")
    if len(rid) > MAX_ID_LENGTH:
        raise InvalidPayload(f"data.id is longer than {MAX_ID_LENGTH} characters")
    if "\x00" in rid:
        raise InvalidPayload("data.id contains a NUL character")
    return rid


def parse_envelope(doc: Any) -> Envelope:
    """Validate the envelope; `data.id` is required only for the tables we ingest."""
    if not isinstance(doc, dict):
        raise InvalidPayload("body must be a JSON object")
    get = doc.get
    version = get("apiVersion")
    if isinstance(version, bool) or not isinstance(version, _VERSION_TYPES):
        raise InvalidPayload("apiVersion is missing or not a string/number")
    operation = get("operation")
    op = _OPERATIONS.get(operation.upper()) if isinstance(operation, str) else None
    if op is None:
        raise InvalidPayload("operation must be INSERT, UPDATE or DELETE")
    table = get("table")
    if not isinstance(table, str) or not (table := table.strip().lower()):
        raise InvalidPayload("table is missing")
    data = get("data")
    if not isinstance(data, dict):
        raise InvalidPayload("data must be an object")
    diff = get("diff")
    if diff is None:
        diff = ()
    elif not isinstance(diff, list) or not all(isinstance(d, str) for d in diff):
        raise InvalidPayload("diff must be a list of field names")
    rid = record_id(data) if table in INGESTED_TABLES else None
    return Envelope(str(version), op, table, data, tuple(diff), rid)
