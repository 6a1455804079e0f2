"""Shopmonkey v3 REST client (aiohttp): one session per process, each call with the calling
tenant's own API key (account isolation). Used by the webhook path (customer look-ups), the
poller and `leadctl backfill`.

Public API (stable):
- `ShopmonkeyClient(base_url, timeout=, retry=Retries(), limiter=None)`, `await start()` /
  `close()`; a `RateLimiter` paces every request (`leadctl backfill`).
- `list_records(api_key, "order"|"customer", where=, orderby=, orderby_param=, limit=, skip=)`
  → `Page(data, total, has_more)`: ONE page of `GET /v3/<table>`; `where` is a Prisma filter,
  e.g. `{"updatedDate": {"gte": "2026-05-01T00:00:00.000Z"}}`, `orderby` e.g.
  `{"updatedDate": "asc"}`; `limit` is capped at 100 by Shopmonkey. For "every record changed
  since a cursor", with paging, the API's quirks handled (a silently dropped filter or sort,
  rows never updated, ties at a page boundary), use
  `services.ingest.service_layer.record_reader.RecordReader(client).read(tenant, table, since)`
  (reference §2.3).
- `get_customer(api_key, id)`, `get_order(api_key, id)` → the record, or None on 404;
  `get_order_services(api_key, id)` → the order's services (`/v3/order/:id/service`).
- Errors: `ShopmonkeyRateLimited` (429, `.retry_after` seconds from `Retry-After`),
  `ShopmonkeyUnavailable` (timeouts, 408/5xx), `ShopmonkeyRejected` (401/403/400, no retry).
  Transient failures are retried as `Retries` says first, waiting `backoff_delay` (exponential
  with jitter, never sooner than a 429's `Retry-After`, capped; reference §2.6); `NO_RETRY`
  fails fast.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import aiohttp

from services.common.domain.pacing import backoff_delay
from services.common.rate_limiter import RateLimiter
from services.ingest.adapters.metrics import SHOPMONKEY_REQUESTS
from services.ingest.domain.model import Page
from services.ingest.errors import (
    OrderByRejected,
    ShopmonkeyRateLimited,
    ShopmonkeyRejected,
    ShopmonkeyUnavailable,
)

log = logging.getLogger(__name__)
TRANSIENT = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Retries:
    """`attempts` total tries of a Shopmonkey request: after a `Retry-After` exactly that long
    (at most `cap`), else `backoff_delay(base, cap)` between them."""

    attempts: int = 5
    base: float = 0.5
    cap: float = 60.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before try `attempt + 1` (`attempt` counts from 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.cap)
        return backoff_delay(attempt - 1, base=self.base, cap=self.cap)


NO_RETRY = Retries(attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _message(body: bytes) -> str:
    try:
        doc = json.loads(body)
    except ValueError:
        return body[:200].decode(errors="replace")
    if isinstance(doc, dict):
        return str(doc.get("message") or doc.get("code") or doc)[:300]
    return str(doc)[:300]


class ShopmonkeyClient:
    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        retry: Retries = Retries(),
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retry = retry
        self._limiter = limiter
        self._sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> ShopmonkeyClient:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=64, ttl_dns_cache=300),
                headers={"Accept": "application/json", "User-Agent": "lead-orchestrator/ingest"},
            )
        return self

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get_customer(
        self, api_key: str, customer_id: str, *, retry: Retries | None = None
    ) -> dict[str, Any] | None:
        doc = await self._get(api_key, f"/customer/{quote(customer_id, safe='')}", None, retry)
        return _data_object(doc)

    async def get_order(
        self, api_key: str, order_id: str, *, retry: Retries | None = None
    ) -> dict[str, Any] | None:
        doc = await self._get(api_key, f"/order/{quote(order_id, safe='')}", None, retry)
        return _data_object(doc)

    async def get_order_services(
        self, api_key: str, order_id: str, *, retry: Retries | None = None
    ) -> list[dict[str, Any]] | None:
        """`GET /v3/order/:id/service`: the order's services (Shopmonkey does not nest them in
        the order, reference §5); None on 404."""
        path = f"/order/{quote(order_id, safe='')}/service"
        doc = await self._get(api_key, path, None, retry)
        if doc is None:
            return None
        data = doc.get("data")
        return [s for s in data if isinstance(s, dict)] if isinstance(data, list) else []

    async def list_records(
        self,
        api_key: str,
        table: str,
        *,
        where: dict[str, Any] | None,
        orderby: dict[str, str] | None,
        orderby_param: str = "orderby",
        limit: int = 100,
        skip: int = 0,
    ) -> Page:
        params = {"limit": str(limit), "skip": str(skip)}
        if where is not None:
            params["where"] = json.dumps(where, separators=(",", ":"))
        if orderby is not None:
            params[orderby_param] = json.dumps(orderby, separators=(",", ":"))
        doc = await self._get(api_key, f"/{table}", params, None)
        if doc is None:
            raise ShopmonkeyRejected(404, f"/{table} not found")
        data = doc.get("data")
        meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
        assert isinstance(meta, dict)
        total = meta.get("total")
        has_more = meta.get("hasMore")
        return Page(
            data=[r for r in data if isinstance(r, dict)] if isinstance(data, list) else [],
            total=total if isinstance(total, int) and not isinstance(total, bool) else None,
            has_more=has_more if isinstance(has_more, bool) else None,
        )

    async def _get(
        self,
        api_key: str,
        path: str,
        params: dict[str, str] | None,
        retry: Retries | None,
    ) -> dict[str, Any] | None:
        if self._limiter is not None:
            await self._limiter.acquire()
        if self._session is None:
            raise RuntimeError("ShopmonkeyClient not started")
        policy = retry or self._retry
        endpoint = path.split("/")[1]
        for attempt in range(1, policy.attempts + 1):
            retry_after: float | None = None
            try:
                async with self._session.get(
                    self._base + path,
                    params=params,
                    headers={"Authorization": f"Bearer {api_key}"},
                ) as resp:
                    body = await resp.read()
                    status = resp.status
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (TimeoutError, aiohttp.ClientError) as exc:
                SHOPMONKEY_REQUESTS.labels(endpoint, "error").inc()
                failure: ShopmonkeyUnavailable = ShopmonkeyUnavailable(
                    f"Shopmonkey {endpoint}: {type(exc).__name__} {exc}".strip()
                )
            else:
                SHOPMONKEY_REQUESTS.labels(endpoint, str(status)).inc()
                if status == 404 and params is None:
                    return None
                if 200 <= status < 300:
                    try:
                        doc = json.loads(body)
                    except ValueError as exc:
                        raise ShopmonkeyUnavailable(f"Shopmonkey {endpoint}: not JSON") from exc
                    return doc if isinstance(doc, dict) else {"data": doc}
                message = _message(body)
                if status == 429:
                    failure = ShopmonkeyRateLimited(
                        f"Shopmonkey {endpoint}: rate limited", retry_after=retry_after
                    )
                elif status in TRANSIENT:
                    failure = ShopmonkeyUnavailable(
                        f"Shopmonkey {endpoint}: {status} {message}", retry_after=retry_after
                    )
                elif status == 400 and "orderby" in message.lower():
                    raise OrderByRejected(status, message)
                else:
                    raise ShopmonkeyRejected(status, message)
            if attempt >= policy.attempts:
                raise failure
            wait = policy.delay(attempt, retry_after)
            log.info("%s; retry %d/%d in %.2fs", failure, attempt, policy.attempts - 1, wait)
            await self._sleep(wait)
        raise AssertionError("unreachable")


def _data_object(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    data = doc.get("data")
    return data if isinstance(data, dict) else None
