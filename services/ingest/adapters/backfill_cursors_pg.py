"""`BackfillCursors` over PostgreSQL: one `backfill_cursors` row per tenant and `since`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import func

from services.common.db.models import BackfillCursor
from services.ingest.domain.model import BackfillPosition


class PostgresBackfillCursors:
    """A position is written only after every event before it was acknowledged (the caller's
    rule), so a killed backfill resumes at the first page not fully acknowledged."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, tenant_id: uuid.UUID, since: datetime) -> BackfillPosition | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(BackfillCursor).where(
                        BackfillCursor.tenant_id == tenant_id, BackfillCursor.since == since
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        return BackfillPosition(
            row.cursor_at or since, row.cursor_skip, row.orders_produced, row.pages, row.status
        )

    async def start(
        self, tenant_id: uuid.UUID, since: datetime, *, restart: bool
    ) -> BackfillPosition:
        found = await self.load(tenant_id, since)
        async with self._engine.begin() as conn:
            if found is None:
                await conn.execute(insert(BackfillCursor).values(tenant_id=tenant_id, since=since))
            elif restart:
                await conn.execute(
                    self._where(tenant_id, since).values(
                        cursor_at=None,
                        cursor_skip=0,
                        orders_produced=0,
                        pages=0,
                        status="running",
                        finished_at=None,
                        started_at=func.now(),
                        updated_at=func.now(),
                    )
                )
        position = await self.load(tenant_id, since)
        assert position is not None
        return position

    def _where(self, tenant_id: uuid.UUID, since: datetime) -> Any:
        return update(BackfillCursor).where(
            BackfillCursor.tenant_id == tenant_id, BackfillCursor.since == since
        )

    async def advance(
        self, tenant_id: uuid.UUID, since: datetime, position: BackfillPosition, *, done: bool
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                self._where(tenant_id, since).values(
                    cursor_at=position.at,
                    cursor_skip=position.skip,
                    orders_produced=position.produced,
                    pages=position.pages,
                    status="done" if done else "running",
                    finished_at=func.now() if done else None,
                    updated_at=func.now(),
                )
            )
