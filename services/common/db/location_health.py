"""The facts `domain.location_health` judges, read in one statement per call: each location's
address, hours, its company's key and poll cursor, where its orders of the last day came from
(webhook or poller), and the touch points outbound skipped for want of a provider.

The last day's leads are read per location through (tenant_id, state) and the ledger through
its (status, claimed_at) index; the locations asked for are a bound parameter."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.domain.location_health import LocationFacts

WINDOW = timedelta(hours=24)

_FACTS_SQL = """
SELECT t.id AS tenant_id, t.name, t.active, t.postal_address,
       (SELECT count(DISTINCT h.weekday) FROM location_hours h WHERE h.tenant_id = t.id)
           AS hours_days,
       t.shopmonkey_company_id AS company_id,
       (c.shopmonkey_api_key IS NOT NULL) AS company_has_api_key,
       p.last_success_at AS poll_last_success_at, p.last_error AS poll_last_error,
       coalesce(l.webhook_orders, 0) AS webhook_orders, coalesce(l.poll_orders, 0) AS poll_orders,
       coalesce(j.email_disabled, 0) AS email_disabled, coalesce(j.sms_disabled, 0) AS sms_disabled
FROM tenants t
JOIN shopmonkey_companies c ON c.id = t.shopmonkey_company_id
LEFT JOIN company_poll_cursors p ON p.company_id = c.id AND p.kind = 'poll'
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE source = 'webhook') AS webhook_orders,
           count(*) FILTER (WHERE source = 'poll') AS poll_orders
    FROM leads WHERE tenant_id = t.id AND created_at >= :since
) l ON true
LEFT JOIN (
    SELECT tenant_id,
           count(*) FILTER (WHERE reason = 'email_disabled') AS email_disabled,
           count(*) FILTER (WHERE reason = 'sms_disabled') AS sms_disabled
    FROM job_executions
    WHERE status = 'skipped' AND claimed_at >= :since
      AND reason IN ('email_disabled', 'sms_disabled')
    GROUP BY tenant_id
) j ON j.tenant_id = t.id
WHERE (CAST(:all_tenants AS boolean) OR t.id = ANY(:tenants))
ORDER BY t.name
"""


async def location_facts(
    conn: AsyncConnection, *, tenants: frozenset[uuid.UUID] | None, now: datetime
) -> list[LocationFacts]:
    """The facts of these locations (None: every location), by name."""
    params = {
        "since": now - WINDOW,
        "all_tenants": tenants is None,
        "tenants": sorted(tenants or ()),
    }
    result = await conn.execute(text(_FACTS_SQL), params)
    return [LocationFacts(**row) for row in result.mappings()]
