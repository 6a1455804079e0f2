"""`LeadReader` over PostgreSQL (the chat service's lead API): bearer token → tenant, and a
lead's view in one query.

Tokens are per tenant (location), stored as SHA-256 in `tenants.lead_api_key_sha256`; a lead of
another tenant reads exactly like a lead that does not exist. The view is built by PostgreSQL as
one JSON document in a single round trip (`bench/lead_api` measures it).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.common.db.models import Lead, Tenant

TOKEN_PREFIX = "lak_"  # noqa: S105 (a prefix, not a secret)

VIEW_SQL = text(
    """
SELECT json_build_object(
  'leadId', l.lead_id, 'tenantId', l.tenant_id, 'state', l.state, 'source', l.source,
  'firstName', l.first_name, 'vehicle', l.vehicle, 'servicesOfInterest', l.services,
  'lostReason', l.lost_reason, 'sequenceStopped', l.sequence_stopped,
  'optedOut', json_build_object('email', l.email_opted_out, 'sms', l.sms_opted_out),
  'touchesSent', l.touches_sent, 'createdAt', l.created_at, 'updatedAt', l.updated_at,
  'lastTouchAt', l.last_touch_at,
  'chatLink', CAST(:chat_base AS text) || '/' || l.lead_id,
  'location', json_build_object(
    'tenantId', t.id, 'name', t.name, 'timezone', t.timezone, 'address', t.postal_address,
    'phone', t.phone,
    'hours', coalesce((
      SELECT json_agg(json_build_object(
               'weekday', h.weekday, 'opens', to_char(h.opens_at, 'HH24:MI'),
               'closes', to_char(h.closes_at, 'HH24:MI')) ORDER BY h.weekday)
        FROM location_hours h WHERE h.tenant_id = t.id), '[]'::json),
    'services', coalesce((
      SELECT json_agg(json_build_object(
               'code', s.code, 'name', s.name, 'priceCents', s.price_cents) ORDER BY s.name)
        FROM service_catalog s WHERE s.tenant_id = t.id), '[]'::json)),
  'chat', (
    SELECT json_build_object('sessions', count(*), 'lastActivityAt', max(c.last_activity_at))
      FROM chat_sessions c WHERE c.tenant_id = l.tenant_id AND c.lead_id = l.lead_id),
  'touchHistory', coalesce((
    SELECT json_agg(json_build_object(
             'commandId', j.command_id, 'step', j.step_index, 'channel', j.channel,
             'template', j.template, 'status', j.status, 'reason', j.reason,
             'deliveryStatus', j.delivery_status, 'deliveryUpdatedAt', j.delivery_updated_at,
             'decidedAt', j.decided_at, 'claimedAt', j.claimed_at)
           ORDER BY j.claimed_at, j.step_index, j.channel)
      FROM job_executions j WHERE j.tenant_id = l.tenant_id AND j.lead_id = l.lead_id),
    '[]'::json)
)::text
FROM leads l JOIN tenants t ON t.id = l.tenant_id
WHERE l.lead_id = :lead_id AND l.tenant_id = :tenant_id
"""
)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_lead_api_key(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> str:
    """A new lead API token for a location (shown once, stored hashed; replaces the old one)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    await conn.execute(
        update(Tenant).where(Tenant.id == tenant_id).values(lead_api_key_sha256=hash_token(token))
    )
    return token


class PostgresLeadReader:
    """`LeadReader` over the ingest engine; a token's tenant comes from `tokens` (the tenant
    directory in memory: an unknown token costs no query)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        chat_base_url: str,
        tokens: Callable[[str], Awaitable[uuid.UUID | None]],
    ) -> None:
        self._engine = engine
        self._chat_base = chat_base_url.rstrip("/")
        self._tokens = tokens

    async def tenant_for_token(self, token: str) -> uuid.UUID | None:
        return await self._tokens(hash_token(token))

    async def lead_view(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> str | None:
        """The lead as JSON text, or None when this tenant has no such lead."""
        params = {"lead_id": lead_id, "tenant_id": tenant_id, "chat_base": self._chat_base}
        async with self._engine.connect() as conn:
            value = (await conn.execute(VIEW_SQL, params)).scalar_one_or_none()
        return str(value) if value is not None else None

    async def lead_exists(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> bool:
        stmt = select(Lead.lead_id).where(Lead.lead_id == lead_id, Lead.tenant_id == tenant_id)
        async with self._engine.connect() as conn:
            return (await conn.execute(stmt)).first() is not None
