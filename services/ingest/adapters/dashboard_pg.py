"""Read-model queries of the dashboard: one statement over `leads`, one over `job_executions`.

Each is a single scan with GROUPING SETS, so one refresh costs two round trips however many
locations there are. `job_executions` is read through its (status, claimed_at) index for the
time window; `leads` through (tenant_id, state) when one location is selected.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db.models import JOB_STATUSES

#: Outcome reasons that mean "the outbound whitelist stopped it" (DESIGN §6 rules 1–2).
WHITELIST_REASONS = ("whitelist_empty", "not_whitelisted")
#: A row claimed this long before the window may still have been decided inside it.
DECISION_SLACK = timedelta(minutes=10)

_LEADS_SQL = """
SELECT tenant_id, state, bucket, count(*) AS n,
       GROUPING(tenant_id) AS g_tenant
FROM (
    SELECT tenant_id, state,
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


@dataclass(slots=True)
class LeadCounts:
    """Leads by location and state, and leads created per time bucket."""

    by_tenant: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    created_per_bucket: dict[int, int] = field(default_factory=dict)


@dataclass(slots=True)
class TouchCounts:
    """Touch-point decisions in the window, by location, time bucket, reason and channel."""

    by_tenant: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    whitelist_by_tenant: dict[uuid.UUID, int] = field(default_factory=dict)
    #: (bucket, status, reason code) → count
    by_bucket: dict[tuple[int, str, str], int] = field(default_factory=dict)
    #: (channel, status, delivery status or "-") → count
    by_channel: dict[tuple[str, str, str], int] = field(default_factory=dict)


async def lead_counts(
    conn: AsyncConnection, *, tenant: uuid.UUID | None, since: datetime, bucket_seconds: int
) -> LeadCounts:
    where = "WHERE tenant_id = :tenant" if tenant is not None else ""
    params: dict[str, object] = {"since": since, "bucket": bucket_seconds}
    if tenant is not None:
        params["tenant"] = tenant
    result = await conn.execute(text(_LEADS_SQL.format(where=where)), params)
    counts = LeadCounts()
    for tenant_id, state, bucket, n, g_tenant in result:
        if g_tenant == 0:
            counts.by_tenant.setdefault(tenant_id, {})[state] = int(n)
        elif bucket is not None:
            counts.created_per_bucket[int(bucket)] = int(n)
    return counts


async def touch_counts(
    conn: AsyncConnection, *, tenant: uuid.UUID | None, since: datetime, bucket_seconds: int
) -> TouchCounts:
    tenant_filter = "AND tenant_id = :tenant" if tenant is not None else ""
    params: dict[str, object] = {
        "since": since,
        "scan_since": since - DECISION_SLACK,
        "bucket": bucket_seconds,
    }
    if tenant is not None:
        params["tenant"] = tenant
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
