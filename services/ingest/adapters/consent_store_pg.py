"""`ConsentStore` over PostgreSQL (`source_consent`): every record committed before the
webhook, form or poll goes on, so the outbound gate, which reads the row at decision time, sees
a consent change on its very next touch.

The upsert is `services.common.domain.consent.merge` in SQL (a unit-tested twin): an older
record changes nothing; a newer one replaces the row, except that an absent flag never lifts a
recorded False, and an absent line type or channel preference keeps the recorded one.

Group commit: the store writes through the process's `IngestWrites` (`ingest_writes_pg`), so
the records of every call waiting at that moment, and the customer visits waiting with them,
go in one statement (one round trip, one commit, one fsync), and each call returns once its
round is committed. One transaction per webhook held ingest to a few hundred webhooks a second
(bench/ingest). A contact twice in one round goes in a later statement of the same
transaction, in arrival order (`rounds`), so the stored row is what one call after the other
would have stored (`merge` is not associative: a round must not pre-merge). A row PostgreSQL
refuses fails only its own call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from services.common.domain.consent import ConsentRecord

if TYPE_CHECKING:
    from services.ingest.adapters.ingest_writes_pg import IngestWrites

_KEY = ("company_id", "channel", "contact")
_REPLACED = (
    "source",
    "customer_id",
    "verified_at",
    "text_version",
    "consented_at",
    "changed_at",
    "event_key",
)
Row = dict[str, Any]


def _text(value: str | None, limit: int) -> str | None:
    """A source's text as its column can hold it: no NUL (PostgreSQL refuses it in text), no
    lone surrogate (no UTF-8 has it), at most `limit` characters. A signed webhook may carry
    anything in these fields; refusing the row would answer 5xx and the sender would retry it
    forever (and fail the calls sharing its batch)."""
    if value is None:
        return None
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value.replace("\x00", "")[:limit]


def consent_row(company_id: str, record: ConsentRecord) -> Row:
    """A record as the upsert's JSON row (`UPSERT`)."""
    return {
        "company_id": _text(company_id, 100),
        "channel": record.channel.value,
        "contact": _text(record.contact, 320),
        "source": _text(record.source, 20),
        "customer_id": _text(record.customer_id, 100),
        "opted_in": record.opted_in,
        "marketing_opt_in": record.marketing_opt_in,
        "preferred": _text(record.preferred, 10),
        "line_type": _text(record.line_type, 20),
        "verified_at": record.verified_at,
        "text_version": _text(record.text_version, 50),
        "consented_at": record.consented_at,
        "changed_at": record.changed_at,
        "event_key": _text(record.event_key, 300),
    }


_TEXT = ("company_id", "channel", "contact", "source", "customer_id")
_COLUMNS: tuple[tuple[str, str], ...] = (
    *((c, "text") for c in _TEXT),
    ("opted_in", "boolean"),
    ("marketing_opt_in", "boolean"),
    ("preferred", "text"),
    ("line_type", "text"),
    ("verified_at", "timestamptz"),
    ("text_version", "text"),
    ("consented_at", "timestamptz"),
    ("changed_at", "timestamptz"),
    ("event_key", "text"),
)


def _keep_false(column: str) -> str:
    return (
        f"CASE WHEN excluded.{column} IS NULL AND source_consent.{column} IS FALSE"
        f" THEN FALSE ELSE excluded.{column} END"
    )


#: One statement for a round of rows, passed as one JSON array (`jsonb_to_recordset` makes the
#: rows): one parameter, encoded by orjson, where typed arrays cost psycopg a Python call per
#: value; its plan prepared once per connection. Written as SQL, not built with SQLAlchemy per
#: call, which cost more CPU than the rest of a webhook. The rows go in the order of their key:
#: batches of two processes (the poller and a webhook process, two replicas) over the same
#: contacts lock them in one order and never deadlock (in arrival order they did, and PostgreSQL
#: failed a whole batch).
UPSERT = (
    f"INSERT INTO source_consent ({', '.join(c for c, _ in _COLUMNS)}) "
    f"SELECT {', '.join(c for c, _ in _COLUMNS)} FROM jsonb_to_recordset(%s::jsonb) "
    f"AS r({', '.join(f'{c} {t}' for c, t in _COLUMNS)}) "
    f"ORDER BY {', '.join(_KEY)} "
    f"ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET "
    + ", ".join(
        [
            *(f"{k} = excluded.{k}" for k in _REPLACED),
            f"opted_in = {_keep_false('opted_in')}",
            f"marketing_opt_in = {_keep_false('marketing_opt_in')}",
            "preferred = coalesce(excluded.preferred, source_consent.preferred)",
            "line_type = coalesce(excluded.line_type, source_consent.line_type)",
            "updated_at = now()",
        ]
    )
    + " WHERE excluded.changed_at >= source_consent.changed_at"
)


def rounds(rows: Sequence[Row]) -> list[list[Row]]:
    """The rows as statements ON CONFLICT can take: a contact at most once in each, a contact's
    rows in arrival order across them (the n-th row of a contact goes in round n)."""
    out: list[list[Row]] = []
    seen: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = (row["company_id"], row["channel"], row["contact"])
        n = seen.get(key, 0)
        seen[key] = n + 1
        if n == len(out):
            out.append([])
        out[n].append(row)
    return out


class PostgresConsentStore:
    """On `writes`, shared with the process's customer visits; `close()` closes it."""

    def __init__(self, writes: IngestWrites) -> None:
        self._writes = writes

    async def record(self, company_id: str, records: Sequence[ConsentRecord]) -> None:
        if records:
            await self._writes.keep([consent_row(company_id, r) for r in records])

    async def close(self) -> None:
        await self._writes.close()

    @property
    def commits(self) -> int:
        """Transactions its writer committed (tests read them)."""
        return self._writes.commits

    @property
    def calls(self) -> int:
        """Consent calls those carried."""
        return self._writes.consent_calls
