"""Benchmark of the read model's writes: `project()` (services/sequencer/adapters/projection.py)
on batches of 1, 3, 10 and 100 lead changes, against a baseline measured in the same run: the
same upserts one statement per row, sent in one pipeline in one transaction (what `project`
did before it sent a batch as one statement). At 200 orders/s end to end the projection's
batches hold a few dozen changes each (PROJECTION_FETCH_WAIT_MS); a replay or a backfill
writes them by the hundred.

    uv run --frozen python bench/sequencer/projection.py [--batches 300]

Prints, per batch size, wall time, this process's CPU and the PostgreSQL backend's CPU (read
from /proc: the server must be on this machine) per batch for both, and the ratios. Uses its
own database (lo_bench_projection, created and migrated here). Only loopback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.common import migrated_database  # noqa: E402
from schemas.base import LeadState  # noqa: E402
from schemas.events import Customer, LeadChanged, LeadSnapshot, OrderSource  # noqa: E402
from services.sequencer.adapters.projection import UPSERT, project, row_of  # noqa: E402

SIZES = (1, 3, 10, 100)


def a_change(tenant: uuid.UUID) -> LeadChanged:
    now = datetime.now(UTC)
    lead = LeadSnapshot(
        lead_id=uuid.uuid4(),
        tenant_id=tenant,
        state=LeadState.NEW,
        source=OrderSource.WEBHOOK,
        version=1,
        shopmonkey_order_id=f"bench-{uuid.uuid4().hex}",
        customer=Customer(email="jane@example.net", first_name="Jane"),
        created_at=now,
        updated_at=now,
    )
    return LeadChanged(
        tenant_id=tenant,
        lead_id=lead.lead_id,
        from_state=None,
        to_state=LeadState.NEW,
        reason="bench",
        changed_at=now,
        lead=lead,
    )


def row_at_a_time(
    conn: psycopg.Connection[Any], changes: Sequence[tuple[None, LeadChanged]]
) -> int:
    """The baseline (`project` before): one statement per row in one pipeline, in one
    transaction; a batch of one, one autocommitted statement (as now)."""
    rows = [row_of(change) for _, change in changes]
    with conn.cursor() as cur:
        if len(rows) == 1:
            cur.execute(UPSERT, rows[0])
        else:
            with conn.transaction():
                cur.executemany(UPSERT, rows)
        return max(cur.rowcount, 0)


def backend_cpu(pid: int) -> float:
    """CPU seconds of the PostgreSQL backend `pid` so far (nan: not on this machine)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    write: Callable[[psycopg.Connection[Any], Any], Any],
    conn: psycopg.Connection[Any],
    tenant: uuid.UUID,
    size: int,
    batches: int,
) -> tuple[float, float, float]:
    """(wall ms, this process's CPU ms, the backend's CPU ms) per batch of `size` new leads."""
    work = [[(None, a_change(tenant)) for _ in range(size)] for _ in range(batches)]
    backend = conn.info.backend_pid
    wall0, cpu0, server0 = time.perf_counter(), time.process_time(), backend_cpu(backend)
    for batch in work:
        write(conn, batch)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server = backend_cpu(backend) - server0
    return wall / batches * 1000, cpu / batches * 1000, server / batches * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=300, help="batches per size and side")
    args = parser.parse_args()
    url = migrated_database("lo_bench_projection")
    with psycopg.connect(url, autocommit=True) as conn:
        tenant = uuid.uuid4()
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name) VALUES ('co_bench', 'bench')"
            " ON CONFLICT (id) DO NOTHING"
        )
        conn.execute(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
            " timezone) VALUES (%s, 'bench', 'co_bench', %s, 'UTC')",
            (tenant, f"loc_{tenant.hex[:8]}"),
        )
        print(f"bench/sequencer/projection: {args.batches} batches per size and side")
        print(f"{'batch':>6} {'side':13} {'wall ms':>8} {'CPU ms':>8} {'server ms':>9}")
        for size in SIZES:
            batches = max(10, args.batches * 10 // max(size, 10))
            figures: dict[str, tuple[float, float, float]] = {}
            sides = [("row at a time", row_at_a_time), ("project", project)]
            for turn in range(2):  # twice, in turn first: the machine is noisy, the table grows
                for name, write in sides if turn == 0 else sides[::-1]:
                    got = measure(write, conn, tenant, size, batches)
                    best = figures.get(name, got)
                    figures[name] = (  # each at its best
                        min(best[0], got[0]),
                        min(best[1], got[1]),
                        min(best[2], got[2]),
                    )
            for name, (wall, cpu, server) in figures.items():
                print(f"{size:>6} {name:13} {wall:8.3f} {cpu:8.3f} {server:9.3f}")
            base, new = figures["row at a time"], figures["project"]
            ratios = [n / b if b else float("nan") for n, b in zip(new, base, strict=True)]
            print(f"{size:>6} {'ratio':13} {ratios[0]:8.2f} {ratios[1]:8.2f} {ratios[2]:9.2f}")
        conn.execute("DELETE FROM leads WHERE tenant_id = %s", (tenant,))
        conn.execute("DELETE FROM tenants WHERE id = %s", (tenant,))


if __name__ == "__main__":
    main()
