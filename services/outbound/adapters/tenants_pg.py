"""Tenant profiles (location, hours, catalog) read from PostgreSQL, cached for a short while."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import InfrastructureError
from services.outbound.domain.model import TenantProfile

log = logging.getLogger(__name__)

PROFILE_SQL = """
SELECT t.id, t.name, t.timezone, t.active, t.us_state, t.postal_address, t.phone,
       coalesce((SELECT json_agg(json_build_array(h.weekday, h.opens_at::text, h.closes_at::text))
                   FROM location_hours h WHERE h.tenant_id = t.id), '[]'::json) AS hours,
       coalesce((SELECT json_agg(s.name ORDER BY s.name)
                   FROM service_catalog s WHERE s.tenant_id = t.id), '[]'::json) AS catalog
  FROM tenants t WHERE t.id = %(tenant_id)s
"""


def profile_from_row(row: tuple[Any, ...]) -> TenantProfile | None:
    """Build a profile; a tenant whose timezone does not exist is treated as unknown."""
    tid, name, tz, active, us_state, address, phone, hours, catalog = row
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("tenant %s has an invalid timezone %r: nothing is sent for it", tid, tz)
        return None
    return TenantProfile(
        id=tid,
        name=name,
        timezone=tz,
        active=bool(active),
        us_state=us_state,
        postal_address=(address or "").strip() or None,
        phone=phone,
        hours={int(d): (dtime.fromisoformat(o), dtime.fromisoformat(c)) for d, o, c in hours},
        catalog=tuple(catalog),
    )


class PostgresTenantDirectory:
    """`TenantDirectory` with a TTL cache (hours and addresses change rarely)."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, ttl_seconds: float = 60.0) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._cache: dict[uuid.UUID, tuple[float, TenantProfile | None]] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}

    async def get(self, tenant_id: uuid.UUID) -> TenantProfile | None:
        hit = self._cache.get(tenant_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl:
            return hit[1]
        lock = self._locks.setdefault(tenant_id, asyncio.Lock())
        async with lock:
            hit = self._cache.get(tenant_id)
            if hit is not None and time.monotonic() - hit[0] < self._ttl:
                return hit[1]
            profile = await self._load(tenant_id)
            self._cache[tenant_id] = (time.monotonic(), profile)
            return profile

    async def _load(self, tenant_id: uuid.UUID) -> TenantProfile | None:
        try:
            async with self._pool.connection() as conn:
                cur = await conn.execute(PROFILE_SQL, {"tenant_id": tenant_id})
                row = await cur.fetchone()
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise InfrastructureError(f"PostgreSQL: {exc}") from exc
        return profile_from_row(row) if row else None
