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
        max_stale: float = 0.0,
        refresh_errors: tuple[type[BaseException], ...] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.negative_ttl = ttl if negative_ttl is None else min(negative_ttl, ttl)
        self.max_negative = max_negative
        self.max_stale = max_stale
        self.refresh_errors = refresh_errors
        self.clock = clock
        self._known: dict[K, tuple[float, V]] = {}
        self._missing: OrderedDict[K, float] = OrderedDict()
        self._locks: dict[K, asyncio.Lock] = {}
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
        now = self.clock()
        if value is None:
            self._known.pop(key, None)
            self._missing[key] = now + self.negative_ttl
            self._missing.move_to_end(key)
            while len(self._missing) > self.max_negative:
                self._missing.popitem(last=False)
        else:
            self._missing.pop(key, None)
            self._known[key] = (now + self.ttl, value)

    def discard(self, key: K) -> None:
        self._known.pop(key, None)
        self._missing.pop(key, None)

    def clear(self) -> None:
        self._known.clear()
        self._missing.clear()

    def values(self) -> list[V]:
        """Every known value, fresh or not."""
        return [value for _, value in self._known.values()]

    async def get(self, key: K, load: Callable[[], Awaitable[V | None]]) -> V | None:
        """`key`'s value: fresh from the cache; stale (within `max_stale`) while one background
        `load` refreshes it; else loaded once (concurrent callers of one key wait for the same
        load). Errors of a foreground `load` propagate; nothing is cached then."""
        if (hit := self.peek(key)) is not None:
            return hit[0]
        stale = self._known.get(key)
        if stale is not None and self.clock() < stale[0] + self.max_stale:
            self._refresh(key, load)
            return stale[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                if (hit := self.peek(key)) is not None:
                    return hit[0]
                value = await load()
                self.put(key, value)
                return value
        finally:
            if not lock.locked() and self._locks.get(key) is lock:
                del self._locks[key]

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
