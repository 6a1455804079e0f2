"""The poller's cursors in `company_poll_cursors` (one row per Shopmonkey company and kind)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.models import CompanyPollCursor
from services.ingest.errors import Unavailable

MAX_ERROR_CHARS = 2000


class PostgresCursors:
    """`PollCursors`. A cursor only moves forward; errors never move it."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, company_id: str, kind: str) -> datetime | None:
        stmt = select(CompanyPollCursor.cursor_at).where(
            CompanyPollCursor.company_id == company_id, CompanyPollCursor.kind == kind
        )
        try:
            async with self._engine.connect() as conn:
                return (await conn.execute(stmt)).scalar_one_or_none()
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc

    async def advance(self, company_id: str, kind: str, cursor_at: datetime | None) -> None:
        values: dict[str, Any] = {
            "company_id": company_id,
            "kind": kind,
            "cursor_at": cursor_at,
            "last_success_at": func.now(),
            "last_error": None,
            "updated_at": func.now(),
        }
        stmt = insert(CompanyPollCursor).values(**values)
        new_cursor = (
            func.greatest(CompanyPollCursor.cursor_at, stmt.excluded.cursor_at)
            if cursor_at is not None
            else CompanyPollCursor.cursor_at
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[CompanyPollCursor.company_id, CompanyPollCursor.kind],
            set_={
                "cursor_at": new_cursor,
                "last_success_at": stmt.excluded.last_success_at,
                "last_error": None,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await self._write(stmt)

    async def record_error(self, company_id: str, kind: str, error: str) -> None:
        message = error[:MAX_ERROR_CHARS]
        stmt = insert(CompanyPollCursor).values(
            company_id=company_id,
            kind=kind,
            last_error=message,
            last_error_at=func.now(),
            updated_at=func.now(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[CompanyPollCursor.company_id, CompanyPollCursor.kind],
            set_={
                "last_error": stmt.excluded.last_error,
                "last_error_at": stmt.excluded.last_error_at,
                "updated_at": stmt.excluded.updated_at,
            },
        )
        await self._write(stmt)

    async def _write(self, stmt: Any) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(stmt)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc
