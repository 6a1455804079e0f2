"""`ConsentStore` over PostgreSQL (`source_consent`): one upsert per record, all committed in
one transaction before the webhook, form or poll goes on, so the outbound gate, which reads the
row at decision time, sees a consent change on its very next touch.

The upsert is `services.common.domain.consent.merge` in SQL (a unit-tested twin): an older
record changes nothing; a newer one replaces the row, except that an absent flag never lifts a
recorded False, and an absent line type or channel preference keeps the recorded one.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case, func
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.models import SourceConsent
from services.common.domain.consent import ConsentRecord
from services.ingest.errors import Unavailable

_T = SourceConsent


def _text(value: str | None, limit: int) -> str | None:
    """A source's text as its column can hold it: no NUL (PostgreSQL refuses it in text),
    at most `limit` characters. A signed webhook may carry anything in these fields; refusing
    the row would answer 5xx and the sender would retry it forever."""
    return None if value is None else value.replace("\x00", "")[:limit]


def _row(company_id: str, record: ConsentRecord) -> dict[str, object]:
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


class PostgresConsentStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def record(self, company_id: str, records: Sequence[ConsentRecord]) -> None:
        if not records:
            return
        rows = [_row(company_id, r) for r in records]
        new = insert(_T)
        ex = new.excluded

        def keep_false(column: str) -> object:
            old = getattr(_T, column)
            return case((ex[column].is_(None) & old.is_(False), False), else_=ex[column])

        stmt = new.on_conflict_do_update(
            index_elements=["company_id", "channel", "contact"],
            set_={
                **{k: ex[k] for k in rows[0] if k not in ("company_id", "channel", "contact")},
                "opted_in": keep_false("opted_in"),
                "marketing_opt_in": keep_false("marketing_opt_in"),
                "preferred": func.coalesce(ex.preferred, _T.preferred),
                "line_type": func.coalesce(ex.line_type, _T.line_type),
                "updated_at": func.now(),
            },
            where=ex.changed_at >= _T.changed_at,
        )
        try:
            async with self._engine.begin() as conn:
                for row in rows:  # one contact per statement: ON CONFLICT sees each once
                    await conn.execute(stmt, row)
        except (DBAPIError, PoolTimeout, OSError) as exc:
            raise Unavailable(f"consent store: {exc.__class__.__name__}") from exc
