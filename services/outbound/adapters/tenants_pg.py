"""Tenant profiles (location, hours, catalog) read from PostgreSQL, cached for a short while.

Every tenant's profile is read at start in one statement (`preload`), so no location's first
command after a deploy or a quiet spell waits for a read of its own; after that each profile
is read again once TENANT_CACHE_SECONDS have passed (how long a change takes to apply)."""

from __future__ import annotations

import logging
import uuid
from datetime import date
from datetime import time as dtime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from psycopg_pool import AsyncConnectionPool

from services.common.cache import TtlCache
from services.outbound.adapters.pg_pool import connection
from services.outbound.domain.model import TenantProfile

log = logging.getLogger(__name__)

PROFILES_SQL = """
SELECT t.id, t.name, t.timezone, t.active, t.us_state, t.postal_address, t.phone,
       coalesce((SELECT json_agg(json_build_array(h.weekday, h.opens_at::text, h.closes_at::text))
                   FROM location_hours h WHERE h.tenant_id = t.id), '[]'::json) AS hours,
       coalesce((SELECT json_agg(s.name ORDER BY s.name)
                   FROM service_catalog s WHERE s.tenant_id = t.id), '[]'::json) AS catalog,
       t.review_url,
       coalesce((SELECT json_agg(d.day::text ORDER BY d.day)
                   FROM location_closed_days d WHERE d.tenant_id = t.id), '[]'::json)
         AS closed_days
  FROM tenants t
"""
PROFILE_SQL = PROFILES_SQL + " WHERE t.id = %(tenant_id)s"


def profile_from_row(row: tuple[Any, ...]) -> TenantProfile | None:
    """Build a profile; a tenant whose timezone does not exist is treated as unknown."""
    tid, name, tz, active, us_state, address, phone, hours, catalog = row[:9]
    review_url = row[9] if len(row) > 9 else None
    closed = row[10] if len(row) > 10 else []
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
        review_url=(review_url or "").strip() or None,
        closed_days=frozenset(date.fromisoformat(d) for d in closed),
    )


class PostgresTenantDirectory:
    """`TenantDirectory` with a TTL cache (hours and addresses change rarely); unknown tenants
    are cached too, as misses."""

    def __init__(self, pool: AsyncConnectionPool[Any], *, ttl_seconds: float) -> None:
        self._pool = pool
        self._cache: TtlCache[uuid.UUID, TenantProfile] = TtlCache(ttl=ttl_seconds)

    async def get(self, tenant_id: uuid.UUID) -> TenantProfile | None:
        return await self._cache.get(tenant_id, lambda: self._load(tenant_id))

    async def preload(self) -> int:
        """Cache every tenant's profile (one statement); returns how many. A tenant whose
        profile is unusable (its timezone: logged) is left to its own read, as before."""
        async with connection(self._pool) as conn:
            cur = await conn.execute(PROFILES_SQL)
            rows = await cur.fetchall()
        profiles = [p for p in map(profile_from_row, rows) if p is not None]
        for profile in profiles:
            self._cache.put(profile.id, profile)
        return len(profiles)

    async def _load(self, tenant_id: uuid.UUID) -> TenantProfile | None:
        async with connection(self._pool) as conn:
            cur = await conn.execute(PROFILE_SQL, {"tenant_id": tenant_id})
            row = await cur.fetchone()
        return profile_from_row(row) if row else None
