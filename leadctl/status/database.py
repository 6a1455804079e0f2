"""The figures `leadctl status` reads from PostgreSQL: leads by state, touch points of the last
hours by status and reason, recent errors (the poller's company cursors, failed or unknown
sends, delivery failures), claims left undecided, and what keeps each location from sending
(`domain.location_health`). An unreachable database becomes one error
line."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from leadctl.tables import error_line
from services.common.settings import CommonSettings

#: Recent-error rows shown per kind.
ERROR_ROWS = 10
#: A 'claimed' ledger row older than this was probably left by a crashed outbound.
STUCK_AFTER = timedelta(minutes=5)

LEADS_SQL = "SELECT state, count(*) FROM leads GROUP BY state"
TOUCHES_SQL = """
SELECT status, coalesce(nullif(split_part(reason, ':', 1), ''), '-') AS reason, channel,
       count(*)
FROM job_executions
WHERE status IN ('claimed', 'sent', 'skipped', 'deferred', 'failed', 'unknown', 'recorded')
  AND claimed_at >= :since
GROUP BY 1, 2, 3
"""
POLLER_ERRORS_SQL = """
SELECT co.name AS company, c.company_id, c.kind, c.last_error AS error,
       c.last_error_at AS at, c.last_success_at
FROM company_poll_cursors c JOIN shopmonkey_companies co ON co.id = c.company_id
WHERE c.last_error IS NOT NULL
ORDER BY c.last_error_at DESC NULLS LAST
LIMIT :limit
"""
FAILED_SENDS_SQL = """
SELECT coalesce(j.decided_at, j.claimed_at) AS at, j.status, j.channel, j.reason,
       j.lead_id, t.name AS tenant
FROM job_executions j LEFT JOIN tenants t ON t.id = j.tenant_id
WHERE j.status IN ('failed', 'unknown') AND j.claimed_at >= :since
ORDER BY j.claimed_at DESC
LIMIT :limit
"""
#: Delivery reports that say the message did not arrive (SendGrid and Twilio status words).
DELIVERY_FAILURES = ("bounced", "blocked", "dropped", "undelivered", "failed")
DELIVERY_FAILURES_SQL = f"""
SELECT j.delivery_updated_at AS at, j.channel, j.delivery_status, j.delivery_error AS error,
       j.lead_id, t.name AS tenant
FROM job_executions j LEFT JOIN tenants t ON t.id = j.tenant_id
WHERE j.status = 'sent' AND j.delivery_status IN ({", ".join(f"'{d}'" for d in DELIVERY_FAILURES)})
  AND j.delivery_updated_at >= :since
ORDER BY j.delivery_updated_at DESC
LIMIT :limit
"""
STUCK_SQL = """
SELECT count(*) FROM job_executions WHERE status = 'claimed' AND claimed_at < :before
"""


async def database_facts(
    settings: CommonSettings,
    hours: float,
    *,
    poll_interval: timedelta = timedelta(seconds=30),
    default_key_tenant: uuid.UUID | None = None,
) -> dict[str, Any]:
    from sqlalchemy import text

    from services.common.db.engine import async_engine
    from services.common.db.location_health import location_facts
    from services.common.domain.location_health import judged

    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    engine = async_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
    out: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET LOCAL statement_timeout = 15000"))
            leads = await conn.execute(text(LEADS_SQL))
            out["leads_by_state"] = {state: int(n) for state, n in leads}
            touches = await conn.execute(text(TOUCHES_SQL), {"since": since})
            out["touchpoints"] = [
                {"status": s, "reason": r, "channel": c, "count": int(n)} for s, r, c, n in touches
            ]
            poller = await conn.execute(text(POLLER_ERRORS_SQL), {"limit": ERROR_ROWS})
            out["poller_errors"] = _plain_rows(poller)
            week = {"since": now - timedelta(days=7), "limit": ERROR_ROWS}
            out["failed_sends"] = _plain_rows(await conn.execute(text(FAILED_SENDS_SQL), week))
            undelivered = await conn.execute(text(DELIVERY_FAILURES_SQL), week)
            out["delivery_failures"] = _plain_rows(undelivered)
            stuck = await conn.execute(text(STUCK_SQL), {"before": now - STUCK_AFTER})
            out["stuck_claims"] = int(stuck.scalar_one())
            facts = await location_facts(conn, tenants=None, now=now)
            out["locations"] = judged(
                facts, now=now, poll_interval=poll_interval, default_key_tenant=default_key_tenant
            )
    except Exception as exc:  # unreachable, auth, missing schema: one line, other sections go on
        out["database_error"] = error_line(exc)
    finally:
        await engine.dispose()
    return out


def _plain_rows(result: Any) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts (column name → value): times as ISO text, ids as text."""
    return [
        {k: _plain(v) for k, v in row.items()}  # the SQL names each column for its JSON key
        for row in result.mappings()
    ]


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if isinstance(value, uuid.UUID) else value
