"""Shopmonkey companies and their locations (tenants) from PostgreSQL, cached (`TtlCache`) with a
short TTL so a webhook costs no query: a company is loaded whole (its secrets decrypted once, its
active tenants indexed by location and by id), so routing an order is a dict look-up. Unknown
ids and keys are cached briefly too (no DB flood).

An expired entry of a known company is served while it is refreshed in the background
(stale-while-revalidate, up to `max_stale` seconds): a slow or unavailable PostgreSQL then
neither stalls webhooks nor turns them into 503s; Kafka, not the database, is what a webhook
needs. A deactivated tenant, a new location or a rotated secret still applies within about one
TTL.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.cache import TtlCache
from services.common.db.companies import (
    CompanyRecord,
    companies_with_tenants,
    company_with_tenants,
)
from services.common.db.tenants import TenantRecord, hash_api_key, tenant_for_api_key
from services.common.secret_box import SecretBox
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.shopmonkey_signatures import WebhookKeys
from services.ingest.errors import Unavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def ingest_company(
    record: CompanyRecord, tenants: Sequence[TenantRecord], *, api_key: str | None = None
) -> IngestCompany:
    """A company and its active tenants as ingest routes by them; `api_key` stands in when the
    company has none of its own."""
    return IngestCompany(
        id=record.id,
        name=record.name,
        webhook_keys=WebhookKeys.from_secret(record.signature_scheme, record.webhook_secret),
        shopmonkey_api_key=record.shopmonkey_api_key or api_key,
        tenants=tuple(
            IngestTenant(
                id=t.id,
                name=t.name,
                active=t.active,
                company_id=t.shopmonkey_company_id,
                location_id=t.shopmonkey_location_id,
            )
            for t in tenants
            if t.active
        ),
    )


class PostgresTenants:
    """`TenantDirectory`. The company of the seed's default tenant (TENANT_ID) may use
    SHOPMONKEY_API_KEY when it has no key of its own; no other company ever borrows a key."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        box: SecretBox,
        ttl: float,
        negative_ttl: float = 5.0,
        max_stale: float = 3600.0,
        default_tenant_id: uuid.UUID | None = None,
        default_api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._box = box
        self._default_id = default_tenant_id
        self._default_key = default_api_key or None
        self._by_company: TtlCache[str, IngestCompany] = self._cache(
            ttl, negative_ttl, max_stale, clock
        )
        self._by_tenant: TtlCache[uuid.UUID, IngestCompany] = self._cache(
            ttl, negative_ttl, max_stale, clock
        )
        self._by_key: TtlCache[str, IngestTenant] = self._cache(ttl, negative_ttl, max_stale, clock)

    @staticmethod
    def _cache(
        ttl: float, negative_ttl: float, max_stale: float, clock: Callable[[], float]
    ) -> TtlCache[K, V]:
        return TtlCache(
            ttl=ttl,
            negative_ttl=negative_ttl,
            max_stale=max_stale,
            refresh_errors=(Unavailable,),
            clock=clock,
        )

    def to_ingest(self, record: CompanyRecord, tenants: Sequence[TenantRecord]) -> IngestCompany:
        default = self._default_key if any(t.id == self._default_id for t in tenants) else None
        return ingest_company(record, tenants, api_key=default)

    def _remember(self, company: IngestCompany) -> IngestCompany:
        """Whichever key loaded a company, it answers by its id and its tenants' ids too."""
        self._by_company.put(company.id, company)
        for tenant in company.tenants:
            self._by_tenant.put(tenant.id, company)
        return company

    async def _load(
        self, *, company_id: str | None = None, tenant_id: uuid.UUID | None = None
    ) -> IngestCompany | None:
        async with self._engine.connect() as conn:
            found = await company_with_tenants(
                conn, box=self._box, company_id=company_id, tenant_id=tenant_id
            )
        return self._remember(self.to_ingest(*found)) if found is not None else None

    async def company(self, company_id: str) -> IngestCompany | None:
        # A fresh entry (every request but a few an hour) is answered here, without a
        # coroutine of its own.
        if (hit := self._by_company.peek(company_id)) is not None:
            return hit[0]
        load = functools.partial(self._load, company_id=company_id)
        return await self._cached(self._by_company, company_id, load)

    async def company_of(self, tenant_id: uuid.UUID) -> IngestCompany | None:
        hit = self._by_tenant.peek(tenant_id)
        if hit is not None:
            company = hit[0]
        else:
            load = functools.partial(self._load, tenant_id=tenant_id)
            company = await self._cached(self._by_tenant, tenant_id, load)
        return company if company is not None and tenant_id in company.by_id else None

    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        company = await self.company_of(tenant_id)
        return company.by_id.get(tenant_id) if company is not None else None

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        key = hash_api_key(api_key)
        if (hit := self._by_key.peek(key)) is not None:
            return hit[0]

        async def load() -> IngestTenant | None:
            async with self._engine.connect() as conn:
                record = await tenant_for_api_key(conn, api_key=api_key)
            return await self.get(record.id) if record is not None else None

        return await self._cached(self._by_key, key, load)

    async def pollable(self) -> list[IngestCompany]:
        try:
            async with self._engine.connect() as conn:
                found = await companies_with_tenants(conn, box=self._box)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc
        companies = [self.to_ingest(record, tenants) for record, tenants in found]
        return [c for c in companies if c.can_call_shopmonkey]

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def _cached(
        self, cache: TtlCache[K, V], key: K, load: Callable[[], Awaitable[V | None]]
    ) -> V | None:
        """`key`'s value when its entry is not fresh (callers answer fresh ones with `peek`):
        a stale one at once while it reloads in the background, else loaded under a per-key
        lock; a PostgreSQL failure is `Unavailable` (a background one keeps the stale entry)."""

        async def guarded() -> V | None:
            try:
                return await load()
            except (OperationalError, DBAPIError, OSError) as exc:
                raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc

        return await cache.get(key, guarded)
