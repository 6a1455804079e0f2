"""Shopmonkey customers by company and id, cached with a TTL (`TtlCache`: fetched once per key
at a time, a missing customer remembered too), under a deadline so a slow API never holds a
webhook for long. Customers are company-level: every location of a company shares its entry."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from services.common.cache import TtlCache
from services.ingest.adapters.metrics import CUSTOMER_CACHE
from services.ingest.adapters.shopmonkey_client import Retries, ShopmonkeyClient
from services.ingest.domain.model import IngestCompany
from services.ingest.errors import ShopmonkeyUnavailable

Key = tuple[str, str]


class CachedCustomers:
    """`CustomerSource` over the Shopmonkey client. At `max_entries` the cache starts over."""

    def __init__(
        self,
        client: ShopmonkeyClient,
        *,
        ttl: float,
        deadline: float | None,
        retry: Retries,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._deadline = deadline
        self._retry = retry
        self._cache: TtlCache[Key, dict[str, Any]] = TtlCache(
            ttl=ttl, max_negative=max_entries, max_known=max_entries, clock=clock
        )

    async def customer(
        self, company: IngestCompany, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        key = (company.id, customer_id)
        if not fresh and (hit := self._cache.peek(key)) is not None:
            CUSTOMER_CACHE.labels("hit").inc()
            return hit[0]
        api_key = company.shopmonkey_api_key
        if not api_key:
            CUSTOMER_CACHE.labels("miss").inc()
            return None
        if fresh:
            self._cache.discard(key)  # a fetch already under way answers this call too
        return await self._cache.get(key, functools.partial(self._fetch, api_key, customer_id))

    async def _fetch(self, api_key: str, customer_id: str) -> dict[str, Any] | None:
        """One look-up, shared by every caller of the customer meanwhile (its answer or its
        error), bounded by the deadline."""
        CUSTOMER_CACHE.labels("miss").inc()
        if self._deadline is None:
            return await self._client.get_customer(api_key, customer_id, retry=self._retry)
        try:
            async with asyncio.timeout(self._deadline):
                return await self._client.get_customer(api_key, customer_id, retry=self._retry)
        except TimeoutError:
            raise ShopmonkeyUnavailable(
                f"Shopmonkey customer: no answer within {self._deadline:.1f}s"
            ) from None
