"""Read-model queries of the dashboard: one statement over `leads`, one over `job_executions`,
and each location's health facts (`db.location_health`).

Each is a single scan with GROUPING SETS, so one refresh costs two round trips however many
locations there are. `job_executions` is read through its (status, claimed_at) index for the
time window; `leads` through (tenant_id, state) when locations are selected. The locations
asked for are a bound parameter (`tenant_id = ANY(:tenants)`), never text in the statement.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db.location_health import location_facts
from services.common.domain.read_model import JOB_STATUSES
from services.ingest.domain.dashboard import (
    DeclinedWork,
    LeadCounts,
    ReadModelCounts,
    TouchCounts,
)
from services.ingest.errors import ReadModelUnavailable

#: Outcome reasons that mean "the outbound whitelist stopped it" (DESIGN §6 rules 1–2).
WHITELIST_REASONS = ("whitelist_empty", "not_whitelisted")
#: A row claimed this long before the window may still have been decided inside it.
DECISION_SLACK = timedelta(minutes=10)

#: Per (location, state) also the sums of declined work (`DeclinedWork`), in the same scan.
_LEADS_SQL = """
SELECT tenant_id, state, bucket, count(*) AS n,
       GROUPING(tenant_id) AS g_tenant,
       sum(declined_services) AS ds, sum(declined_cents) AS dc,
       sum(revived_services) AS rs, sum(revived_cents) AS rc
FROM (
    SELECT tenant_id, state,
           declined_services, declined_cents, revived_services, revived_cents,
           CASE WHEN created_at >= :since
                THEN floor(extract(epoch FROM created_at) / :bucket)::bigint END AS bucket
    FROM leads {where}
) AS l
GROUP BY GROUPING SETS ((tenant_id, state), (bucket))
"""

_STATUS_LIST = ", ".join(f"'{s}'" for s in JOB_STATUSES)
_WL_LIST = ", ".join(f"'{r}'" for r in WHITELIST_REASONS)
_JOBS_SQL = f"""
SELECT tenant_id, status, reason, bucket, channel, delivery_status,
       count(*) AS n, count(*) FILTER (WHERE reason IN ({_WL_LIST})) AS wl,
       GROUPING(tenant_id) AS g_tenant, GROUPING(bucket) AS g_bucket
FROM (
    SELECT tenant_id, status, channel, delivery_status,
           coalesce(nullif(split_part(reason, ':', 1), ''), '-') AS reason,
           floor(extract(epoch FROM coalesce(decided_at, claimed_at)) / :bucket)::bigint
               AS bucket
    FROM job_executions
    WHERE status IN ({_STATUS_LIST})
      AND claimed_at >= :scan_since
      AND coalesce(decided_at, claimed_at) >= :since {{tenant_filter}}
) AS j
GROUP BY GROUPING SETS ((tenant_id, status), (bucket, status, reason),
                        (channel, status, delivery_status))
"""


async def lead_counts(
    conn: AsyncConnection,
    *,
    tenants: frozenset[uuid.UUID] | None,
    since: datetime,
    bucket_seconds: int,
) -> LeadCounts:
    where = "WHERE tenant_id = ANY(:tenants)" if tenants is not None else ""
    params: dict[str, object] = {"since": since, "bucket": bucket_seconds}
    if tenants is not None:
        params["tenants"] = sorted(tenants)
    result = await conn.execute(text(_LEADS_SQL.format(where=where)), params)
    counts = LeadCounts()
    for tenant_id, state, bucket, n, g_tenant, ds, dc, rs, rc in result:
        if g_tenant == 0:
            counts.by_tenant.setdefault(tenant_id, {})[state] = int(n)
            if ds or rs:
                work = DeclinedWork(int(ds), int(dc), int(rs), int(rc))
                old = counts.declined_by_tenant.get(tenant_id)
                counts.declined_by_tenant[tenant_id] = work if old is None else old + work
        elif bucket is not None:
            counts.created_per_bucket[int(bucket)] = int(n)
    return counts


async def touch_counts(
    conn: AsyncConnection,
    *,
    tenants: frozenset[uuid.UUID] | None,
    since: datetime,
    bucket_seconds: int,
) -> TouchCounts:
    tenant_filter = "AND tenant_id = ANY(:tenants)" if tenants is not None else ""
    params: dict[str, object] = {
        "since": since,
        "scan_since": since - DECISION_SLACK,
        "bucket": bucket_seconds,
    }
    if tenants is not None:
        params["tenants"] = sorted(tenants)
    result = await conn.execute(text(_JOBS_SQL.format(tenant_filter=tenant_filter)), params)
    counts = TouchCounts()
    for tenant_id, status, reason, bucket, channel, delivery, n, wl, g_tenant, g_bucket in result:
        if g_tenant == 0:
            counts.by_tenant.setdefault(tenant_id, {})[status] = int(n)
            counts.whitelist_by_tenant[tenant_id] = counts.whitelist_by_tenant.get(
                tenant_id, 0
            ) + int(wl)
        elif g_bucket == 0:
            counts.by_bucket[(int(bucket), status, reason)] = int(n)
        else:
            counts.by_channel[(channel, status, delivery or "-")] = int(n)
    return counts


async def tenant_names(conn: AsyncConnection) -> dict[uuid.UUID, str]:
    result = await conn.execute(text("SELECT id, name FROM tenants ORDER BY name"))
    return {row[0]: row[1] for row in result}


class PostgresDashboardReads:
    """One refresh's reads on one connection, each statement bounded by `statement_timeout_ms`;
    the locations' names are re-read at most every `names_seconds`. A database that does not
    answer raises `ReadModelUnavailable` (its reason: the driver's error class)."""

    def __init__(
        self, engine: AsyncEngine, *, statement_timeout_ms: int = 5000, names_seconds: float = 30.0
    ) -> None:
        self._engine = engine
        self._timeout_ms = statement_timeout_ms
        self._names_seconds = names_seconds
        self._names: tuple[float, dict[uuid.UUID, str]] = (0.0, {})

    async def tenant_names(self, *, max_age: float) -> dict[uuid.UUID, str]:
        if time.monotonic() - self._names[0] <= max_age and self._names[1]:
            return self._names[1]
        try:
            async with self._engine.connect() as conn:
                self._names = (time.monotonic(), await tenant_names(conn))
        except (DBAPIError, PoolTimeout, OSError) as exc:
            raise ReadModelUnavailable(exc.__class__.__name__) from exc
        return self._names[1]

    async def counts(
        self, *, tenants: frozenset[uuid.UUID] | None, since: datetime, bucket_seconds: int
    ) -> ReadModelCounts:
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
                if time.monotonic() - self._names[0] > self._names_seconds or not self._names[1]:
                    self._names = (time.monotonic(), await tenant_names(conn))
                leads = await lead_counts(
                    conn, tenants=tenants, since=since, bucket_seconds=bucket_seconds
                )
                touches = await touch_counts(
                    conn, tenants=tenants, since=since, bucket_seconds=bucket_seconds
                )
                health = await location_facts(conn, tenants=tenants, now=datetime.now(UTC))
                await conn.rollback()
        except (DBAPIError, PoolTimeout, OSError) as exc:
            raise ReadModelUnavailable(exc.__class__.__name__) from exc
        return ReadModelCounts(names=self._names[1], leads=leads, touches=touches, health=health)
