"""A lead's rows in PostgreSQL: its read-model row (`leads`, with its location's name) and its
touch points in the send ledger (`job_executions`) — `leadctl leads show` and the dashboard's
lead page."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

LEAD_SQL = """
SELECT l.*, t.name AS tenant_name FROM leads l LEFT JOIN tenants t ON t.id = l.tenant_id
WHERE l.lead_id = :lead
"""
JOBS_SQL = """
SELECT command_id, step_index, channel, template, recipient, status, reason, provider,
       provider_message_id, delivery_status, delivery_error, delivery_updated_at, record_only,
       attempts,
       due_at, deferred_until, claimed_at, decided_at, consent
FROM job_executions WHERE tenant_id = :tenant AND lead_id = :lead
ORDER BY coalesce(decided_at, claimed_at), step_index
"""
JOB_TENANT_SQL = "SELECT tenant_id FROM job_executions WHERE lead_id = :lead LIMIT 1"


async def lead_rows(
    conn: AsyncConnection, lead_id: uuid.UUID, tenant: uuid.UUID | None = None
) -> tuple[dict[str, Any] | None, uuid.UUID | None, list[dict[str, Any]]]:
    """(the lead's row or None, its tenant (from the row, the ledger or `tenant`), its jobs)."""
    row = (await conn.execute(text(LEAD_SQL), {"lead": lead_id})).mappings().first()
    lead = dict(row) if row is not None else None
    if lead is not None:
        tenant = lead["tenant_id"]
    elif tenant is None:  # not projected (yet): the ledger may still know the lead
        found = await conn.execute(text(JOB_TENANT_SQL), {"lead": lead_id})
        tenant = found.scalar_one_or_none()
    jobs: list[dict[str, Any]] = []
    if tenant is not None:
        result = await conn.execute(text(JOBS_SQL), {"tenant": tenant, "lead": lead_id})
        jobs = [dict(r) for r in result.mappings()]
    return lead, tenant, jobs
