"""Tenants from PostgreSQL, cached (`TtlCache`) with a short TTL so a webhook costs no query
(secrets are decoded once per load). Unknown ids and keys are cached briefly too (no DB flood).

An expired entry of a known tenant is served while it is refreshed in the background
(stale-while-revalidate, up to `max_stale` seconds): a slow or unavailable PostgreSQL then
neither stalls webhooks nor turns them into 503s; Kafka, not the database, is what a webhook
needs. A deactivated tenant or a rotated secret still applies within about one TTL.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.cache import TtlCache
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

K = TypeVar("K", bound=Hashable)
Load = Callable[[], Awaitable[IngestTenant | None]]


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
        self._default_id = default_tenant_id
        self._default_key = default_api_key or None
        self._by_id: TtlCache[uuid.UUID, IngestTenant] = self._cache(
            ttl, negative_ttl, max_stale, clock
        )
        self._by_key: TtlCache[str, IngestTenant] = self._cache(ttl, negative_ttl, max_stale, clock)

    @staticmethod
    def _cache(
        ttl: float, negative_ttl: float, max_stale: float, clock: Callable[[], float]
    ) -> TtlCache[K, IngestTenant]:
        return TtlCache(
            ttl=ttl,
            negative_ttl=negative_ttl,
            max_stale=max_stale,
            refresh_errors=(Unavailable,),
            clock=clock,
        )

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
        # A fresh entry (every request but a few an hour) is answered here, without a
        # coroutine of its own.
        if (hit := self._by_id.peek(tenant_id)) is not None:
            return hit[0]

        async def load() -> IngestTenant | None:
            async with self._engine.connect() as conn:
                record = await get_tenant(conn, tenant_id=tenant_id)
            return self.to_ingest(record) if record is not None and record.active else None

        return await self._cached(self._by_id, tenant_id, load)

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        key = hash_api_key(api_key)
        if (hit := self._by_key.peek(key)) is not None:
            return hit[0]

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

    async def _cached(
        self, cache: TtlCache[K, IngestTenant], key: K, load: Load
    ) -> IngestTenant | None:
        """`key`'s tenant when its entry is not fresh (callers answer fresh ones with `peek`):
        a stale one at once while it reloads in the background, else loaded under a per-key
        lock; a PostgreSQL failure is `Unavailable` (a background one keeps the stale entry)."""

        async def guarded() -> IngestTenant | None:
            try:
                return await load()
            except (OperationalError, DBAPIError, OSError) as exc:
                raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc

        return await cache.get(key, guarded)
