"""`replay_runs` rows: one per `leadctl replay --execute` (the sequencer reads them to know
which records are replayed). Status: pending → running → done, or aborted."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import func

from services.common.db.models import ReplayRun as RunTable
from services.common.domain.replay import OPEN, TP, ReplayRun, tp_key


def create_run(
    engine: Engine,
    *,
    group: str,
    tenants: tuple[uuid.UUID, ...],
    since: datetime,
    until: datetime | None,
    end_offsets: dict[TP, int],
) -> ReplayRun:
    run_id = uuid.uuid4()
    with engine.begin() as conn:
        conn.execute(
            insert(RunTable).values(
                id=run_id,
                app_group=group,
                tenants=list(tenants) or None,
                since=since,
                until=until,
                end_offsets={tp_key(tp): off for tp, off in end_offsets.items()},
                status="pending",
            )
        )
    found = get_run(engine, run_id)
    assert found is not None
    return found


def get_run(engine: Engine, run_id: uuid.UUID) -> ReplayRun | None:
    with engine.connect() as conn:
        r = conn.execute(select(RunTable).where(RunTable.id == run_id)).one_or_none()
    return ReplayRun.from_row(r) if r is not None else None


def open_runs(engine: Engine, group: str) -> list[ReplayRun]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(RunTable)
            .where(RunTable.app_group == group, RunTable.status.in_(OPEN))
            .order_by(RunTable.created_at)
        ).all()
    return [ReplayRun.from_row(r) for r in rows]


def set_status(
    engine: Engine, run_id: uuid.UUID, status: str, *, stats: dict[str, Any] | None = None
) -> bool:
    """Move an open run to `status` (merging `stats`); False when it was no longer open (the
    sequencer finished it: it marks a run 'done' once its group passed the end offsets)."""
    values: dict[str, Any] = {"status": status}
    if status in ("done", "aborted"):
        values["finished_at"] = func.now()
    if stats:
        values["stats"] = RunTable.stats.op("||")(literal(stats, JSONB))
    stmt = update(RunTable).where(RunTable.id == run_id, RunTable.status.in_(OPEN))
    with engine.begin() as conn:
        return conn.execute(stmt.values(**values)).rowcount > 0


def merge_stats(engine: Engine, run_id: uuid.UUID, stats: dict[str, Any]) -> None:
    """Add keys to a run's `stats` whatever its status (the sequencer's own counters, summed
    by its workers, are numeric top-level keys; ours go under their own key)."""
    stmt = (
        update(RunTable)
        .where(RunTable.id == run_id)
        .values(stats=RunTable.stats.op("||")(literal(stats, JSONB)))
    )
    with engine.begin() as conn:
        conn.execute(stmt)
