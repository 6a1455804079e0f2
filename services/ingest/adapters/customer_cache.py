"""Shopmonkey customers by id, cached with a TTL and fetched once per key at a time
(single-flight), under a deadline so a slow API never holds a webhook for long."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

from services.ingest.adapters.metrics import CUSTOMER_CACHE
from services.ingest.adapters.shopmonkey_client import RetryPolicy, ShopmonkeyClient
from services.ingest.domain.model import IngestTenant
from services.ingest.errors import ShopmonkeyUnavailable

Key = tuple[uuid.UUID, str]


class CachedCustomers:
    """`CustomerSource` over the Shopmonkey client."""

    def __init__(
        self,
        client: ShopmonkeyClient,
        *,
        ttl: float,
        deadline: float | None,
        retry: RetryPolicy,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._deadline = deadline
        self._retry = retry
        self._max = max_entries
        self._clock = clock
        self._cache: dict[Key, tuple[float, dict[str, Any] | None]] = {}
        self._inflight: dict[Key, asyncio.Future[dict[str, Any] | None]] = {}

    async def customer(
        self, tenant: IngestTenant, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        key = (tenant.id, customer_id)
        if not fresh:
            hit = self._cache.get(key)
            if hit is not None and self._clock() < hit[0]:
                CUSTOMER_CACHE.labels("hit").inc()
                return hit[1]
        pending = self._inflight.get(key)
        if pending is not None:
            await asyncio.wait({pending})
            if not pending.cancelled():
                return pending.result()
        CUSTOMER_CACHE.labels("miss").inc()
        return await self._load(tenant, key)

    async def _load(self, tenant: IngestTenant, key: Key) -> dict[str, Any] | None:
        if not tenant.shopmonkey_api_key:
            return None
        future: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            record = await self._fetch(tenant.shopmonkey_api_key, key[1])
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            else:
                future.cancel()
            raise
        else:
            future.set_result(record)
            self._store(key, record)
            return record
        finally:
            self._inflight.pop(key, None)

    async def _fetch(self, api_key: str, customer_id: str) -> dict[str, Any] | None:
        if self._deadline is None:
            return await self._client.get_customer(api_key, customer_id, retry=self._retry)
        try:
            async with asyncio.timeout(self._deadline):
                return await self._client.get_customer(api_key, customer_id, retry=self._retry)
        except TimeoutError:
            raise ShopmonkeyUnavailable(
                f"Shopmonkey customer: no answer within {self._deadline:.1f}s"
            ) from None

    def _store(self, key: Key, record: dict[str, Any] | None) -> None:
        if self._ttl <= 0:
            return
        if len(self._cache) >= self._max:
            for stale in list(self._cache)[: self._max // 10 or 1]:
                del self._cache[stale]
        self._cache[key] = (self._clock() + self._ttl, record)
