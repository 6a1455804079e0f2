"""The dashboard's lead search and lead rows on PostgreSQL.

Search: a prefix, in any case, of the first or last name, the full name, the email, the order
number or the lead id, or 4+ digits found in the phone; the locations asked for and the text
are bound parameters (LIKE wildcards in it are escaped), each statement bounded by
`statement_timeout_ms`, newest change first, a page at a time."""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.lead_rows import lead_rows
from services.ingest.errors import ReadModelUnavailable

_SEARCH_SQL = r"""
SELECT l.lead_id, l.tenant_id, t.name AS tenant_name, l.state, l.first_name, l.last_name,
       l.email, l.phone, l.order_number, l.sequence_stopped, l.updated_at
FROM leads l JOIN tenants t ON t.id = l.tenant_id
WHERE (CAST(:all_tenants AS boolean) OR l.tenant_id = ANY(:tenants))
  AND (CAST(:prefix AS text) = '%'
       OR lower(l.first_name) LIKE :prefix ESCAPE '\'
       OR lower(l.last_name) LIKE :prefix ESCAPE '\'
       OR lower(concat_ws(' ', l.first_name, l.last_name)) LIKE :prefix ESCAPE '\'
       OR lower(l.email) LIKE :prefix ESCAPE '\'
       OR lower(l.order_number) LIKE :prefix ESCAPE '\'
       OR l.lead_id::text LIKE :prefix ESCAPE '\'
       OR (CAST(:digits AS text) <> '' AND l.phone LIKE '%' || :digits || '%'))
ORDER BY l.updated_at DESC, l.lead_id
LIMIT :limit OFFSET :offset
"""


def like_prefix(query: str) -> str:
    """`query` lower-cased with LIKE's wildcards escaped, then `%`."""
    return re.sub(r"([\\%_])", r"\\\1", query.lower()) + "%"


class PostgresLeadDirectory:
    def __init__(self, engine: AsyncEngine, *, statement_timeout_ms: int = 5000) -> None:
        self._engine = engine
        self._timeout_ms = statement_timeout_ms

    async def search(
        self, *, tenants: frozenset[uuid.UUID] | None, query: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        digits = re.sub(r"\D", "", query)
        params = {
            "all_tenants": tenants is None,
            "tenants": sorted(tenants or ()),
            "prefix": like_prefix(query),
            "digits": digits if len(digits) >= 4 else "",
            "limit": limit,
            "offset": offset,
        }
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
                result = await conn.execute(text(_SEARCH_SQL), params)
                rows = [dict(r) for r in result.mappings()]
                await conn.rollback()
        except (DBAPIError, PoolTimeout, OSError) as exc:
            raise ReadModelUnavailable(exc.__class__.__name__) from exc
        return rows

    async def lead(self, lead_id: uuid.UUID) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
                lead, _, jobs = await lead_rows(conn, lead_id)
                await conn.rollback()
        except (DBAPIError, PoolTimeout, OSError) as exc:
            raise ReadModelUnavailable(exc.__class__.__name__) from exc
        return lead, jobs if lead is not None else []
