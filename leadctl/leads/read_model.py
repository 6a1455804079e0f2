"""A lead's rows in PostgreSQL for `leads show` (`services.common.db.lead_rows`)."""

from __future__ import annotations

import uuid
from typing import Any

from services.common.settings import CommonSettings


async def read_database(
    settings: CommonSettings, lead_id: uuid.UUID, tenant: uuid.UUID | None
) -> tuple[dict[str, Any] | None, uuid.UUID | None, list[dict[str, Any]]]:
    """(the lead's row or None, its tenant (from the row, the ledger or `tenant`), its jobs)."""
    from services.common.db.engine import async_engine
    from services.common.db.lead_rows import lead_rows

    engine = async_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            return await lead_rows(conn, lead_id, tenant)
    finally:
        await engine.dispose()
