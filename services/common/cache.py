"""A small TTL cache with negative entries, for look-ups by id (tenants, customers).

Known values live until their TTL runs out; misses (a `None` value) are cached for a shorter
while in a bounded LRU of their own, so keys chosen by callers (random tenant ids, tokens)
can neither grow memory without bound nor push a known value out. Expired known values may
be served stale while one background load refreshes them (`max_stale`), so a slow source
never stalls the callers that only need what they already had.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

log = logging.getLogger(__name__)


class TtlCache(Generic[K, V]):
    """Values by key with an expiry; `None` values are misses (negative entries)."""

    def __init__(
        self,
        *,
        ttl: float,
        negative_ttl: float | None = None,
        max_negative: int = 10_000,
        max_known: int | None = None,
        max_stale: float = 0.0,
        refresh_errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = ttl if negative_ttl is None else min(negative_ttl, ttl)
        self.max_negative = max_negative
        self.max_known = max_known
        self.max_stale = max_stale
        self.refresh_errors = refresh_errors
        self.clock = clock
        self._known: dict[K, tuple[float, V]] = {}
        self._missing: OrderedDict[K, float] = OrderedDict()
        self._inflight: dict[K, asyncio.Future[V | None]] = {}
        self._refreshing: dict[K, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self._known) + len(self._missing)

    def peek(self, key: K) -> tuple[V | None] | None:
        """`(value,)` while `key`'s entry is fresh (`(None,)`: known to be missing), else None.
        Synchronous: the hot path answers fresh entries without a coroutine."""
        hit = self._known.get(key)
        if hit is not None:
            return (hit[1],) if self.clock() < hit[0] else None
        until = self._missing.get(key)
        if until is not None and self.clock() < until:
            return (None,)
        return None

    def put(self, key: K, value: V | None) -> None:
        """Cache `value` (None: a miss); nothing is kept when its TTL is 0."""
        now = self.clock()
        if value is None:
            self._known.pop(key, None)
            if self.negative_ttl <= 0:
                return
            self._missing[key] = now + self.negative_ttl
            self._missing.move_to_end(key)
            while len(self._missing) > self.max_negative:
                self._missing.popitem(last=False)
            return
        self._missing.pop(key, None)
        if self.ttl <= 0:
            self._known.pop(key, None)
            return
        self._known.pop(key, None)  # re-inserted last: the dict's order is the entries' age
        if self.max_known is not None and len(self._known) >= self.max_known:
            self._prune(now)
        self._known[key] = (now + self.ttl, value)

    def _prune(self, now: float) -> None:
        """Room for new known values: expired ones go first, then the oldest tenth."""
        expired = [k for k, (until, _) in self._known.items() if until <= now]
        for k in expired:
            del self._known[k]
        if self.max_known is not None and len(self._known) >= self.max_known:
            for k in list(self._known)[: self.max_known // 10 or 1]:
                del self._known[k]

    def discard(self, key: K) -> None:
        self._known.pop(key, None)
        self._missing.pop(key, None)

    def clear(self) -> None:
        self._known.clear()
        self._missing.clear()

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """`key`'s value: fresh from the cache; stale (within `max_stale`) while one background
        `load` refreshes it; else loaded once: concurrent callers of one key share that load's
        value or error. An error is not cached."""
        if (hit := self.peek(key)) is not None:
            return hit[0]
        stale = self._known.get(key)
        if stale is not None and self.clock() < stale[0] + self.max_stale:
            self._refresh(key, load)
            return stale[1]
        pending = self._inflight.get(key)
        if pending is not None:
            await asyncio.wait({pending})
            if not pending.cancelled():  # the loader was cancelled: load anew
                return pending.result()
        return await self._load(key, load)

    async def _load(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        future: asyncio.Future[V | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            value = await load()
        except BaseException as exc:
            if isinstance(exc, Exception):
                future.set_exception(exc)
                future.exception()  # retrieved: no "never retrieved" warning without waiters
            else:
                future.cancel()
            raise
        else:
            future.set_result(value)
            self.put(key, value)
            return value
        finally:
            self._inflight.pop(key, None)

    def _refresh(self, key: K, load: Callable[[], Awaitable[V | None]]) -> None:
        """Reload one entry in the background (one at a time per key); a failure named in
        `refresh_errors` keeps the stale entry and is logged."""
        if key in self._refreshing:
            return

        async def reload() -> None:
            try:
                self.put(key, await load())
            except self.refresh_errors as exc:
                log.warning("cache refresh failed, serving the cached entry: %s", exc)
            finally:
                self._refreshing.pop(key, None)

        self._refreshing[key] = asyncio.get_running_loop().create_task(reload())
