"""Tenants from PostgreSQL, cached with a short TTL so a webhook costs no query (secrets are
decoded once per load). Unknown ids and keys are cached briefly too (no DB flood).

An expired entry of a known tenant is served while it is refreshed in the background
(stale-while-revalidate, up to `max_stale` seconds): a slow or unavailable PostgreSQL then
neither stalls webhooks nor turns them into 503s; Kafka, not the database, is what a webhook
needs. A deactivated tenant or a rotated secret still applies within about one TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.tenants import (
    TenantRecord,
    get_tenant,
    hash_api_key,
    list_tenants,
    tenant_for_api_key,
)
from services.ingest.domain.model import IngestTenant
from services.ingest.domain.shopmonkey_signatures import WebhookKeys
from services.ingest.errors import Unavailable

K = TypeVar("K")
MAX_ENTRIES = 20_000
log = logging.getLogger(__name__)


class PostgresTenants:
    """`TenantDirectory`. The seed's default tenant (TENANT_ID) may use SHOPMONKEY_API_KEY
    when it has no key of its own; no other tenant ever borrows a key."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: float,
        negative_ttl: float = 5.0,
        max_stale: float = 3600.0,
        default_tenant_id: uuid.UUID | None = None,
        default_api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._negative_ttl = min(negative_ttl, ttl) if ttl > 0 else 0.0
        self._max_stale = max_stale
        self._refreshing: dict[object, asyncio.Task[None]] = {}
        self._default_id = default_tenant_id
        self._default_key = default_api_key or None
        self._clock = clock
        self._by_id: dict[uuid.UUID, tuple[float, IngestTenant | None]] = {}
        self._by_key: dict[str, tuple[float, IngestTenant | None]] = {}
        self._locks: dict[object, asyncio.Lock] = {}

    def to_ingest(self, record: TenantRecord) -> IngestTenant:
        api_key = record.shopmonkey_api_key or (
            self._default_key if record.id == self._default_id else None
        )
        return IngestTenant(
            id=record.id,
            name=record.name,
            active=record.active,
            webhook_keys=WebhookKeys.from_secret(record.signature_scheme, record.webhook_secret),
            shopmonkey_api_key=api_key,
        )

    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        if (hit := self._fresh(self._by_id, tenant_id)) is not None:
            return hit[1]

        async def load() -> IngestTenant | None:
            async with self._engine.connect() as conn:
                record = await get_tenant(conn, tenant_id=tenant_id)
            return self.to_ingest(record) if record is not None and record.active else None

        return await self._cached(self._by_id, tenant_id, load)

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        key = hash_api_key(api_key)
        if (hit := self._fresh(self._by_key, key)) is not None:
            return hit[1]

        async def load() -> IngestTenant | None:
            async with self._engine.connect() as conn:
                record = await tenant_for_api_key(conn, api_key=api_key)
            return self.to_ingest(record) if record is not None else None

        return await self._cached(self._by_key, key, load)

    async def pollable(self) -> list[IngestTenant]:
        try:
            async with self._engine.connect() as conn:
                records = await list_tenants(conn, active_only=True)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc
        tenants = [self.to_ingest(r) for r in records]
        return [t for t in tenants if t.shopmonkey_api_key]

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _fresh(
        self, cache: dict[K, tuple[float, IngestTenant | None]], key: K
    ) -> tuple[float, IngestTenant | None] | None:
        """`key`'s entry while it has not expired: every request but a few an hour, answered
        without a coroutine of its own."""
        hit = cache.get(key)
        return hit if hit is not None and self._clock() < hit[0] else None

    async def _cached(
        self,
        cache: dict[K, tuple[float, IngestTenant | None]],
        key: K,
        load: Callable[[], Awaitable[IngestTenant | None]],
    ) -> IngestTenant | None:
        """`key`'s tenant when its entry is not fresh (callers answer fresh ones with
        `_fresh`): a stale one at once while it reloads in the background, else loaded under
        a per-key lock."""
        hit = cache.get(key)
        if hit is not None and hit[1] is not None and self._clock() < hit[0] + self._max_stale:
            self._refresh(cache, key, load)
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if (hit := self._fresh(cache, key)) is not None:
                return hit[1]
            try:
                tenant = await load()
            except (OperationalError, DBAPIError, OSError) as exc:
                raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc
            if len(cache) >= MAX_ENTRIES:
                cache.clear()
            ttl = self._ttl if tenant is not None else self._negative_ttl
            cache[key] = (self._clock() + ttl, tenant)
        self._locks.pop(key, None)
        return tenant

    def _refresh(
        self,
        cache: dict[K, tuple[float, IngestTenant | None]],
        key: K,
        load: Callable[[], Awaitable[IngestTenant | None]],
    ) -> None:
        """Reload one entry in the background (once at a time); failures keep the stale one."""
        if key in self._refreshing:
            return

        async def reload() -> None:
            try:
                tenant = await load()
            except (OperationalError, DBAPIError, OSError) as exc:
                log.warning("tenant refresh failed, serving the cached entry: %s", exc)
                return
            finally:
                self._refreshing.pop(key, None)
            ttl = self._ttl if tenant is not None else self._negative_ttl
            cache[key] = (self._clock() + ttl, tenant)

        self._refreshing[key] = asyncio.get_running_loop().create_task(reload())
