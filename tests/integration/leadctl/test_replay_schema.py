"""Migration 0006 creates replay_runs and backfill_cursors matching the models."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, select

from services.common.db.models import ReplayRun

pytestmark = pytest.mark.integration


async def test_replay_runs_round_trip(db_engine) -> None:  # type: ignore[no-untyped-def]
    run_id = uuid.uuid4()
    tenant = uuid.uuid4()
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(ReplayRun).values(
                id=run_id,
                app_group="lead-sequencer",
                tenants=[tenant],
                since="2026-01-01T00:00:00+00:00",
                end_offsets={"x.leads.order-events.v1:0": 12},
            )
        )
        row = (await conn.execute(select(ReplayRun).where(ReplayRun.id == run_id))).one()
    assert row.tenants == [tenant]
    assert row.status == "pending"
    assert row.end_offsets == {"x.leads.order-events.v1:0": 12}
    assert row.stats == {}
