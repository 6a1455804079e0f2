"""An asyncio rate limiter over the pure `TokenBucket` (services.common.domain.pacing): callers
`await acquire()` and are let through at most `rate` a second, `burst` at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from services.common.domain.pacing import TokenBucket


class RateLimiter:
    """Waits so that acquisitions stay within the bucket's rate; `rate=None` never waits."""

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._bucket = TokenBucket(rate, burst) if rate else None
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def per_minute(cls, count: float, **kwargs: object) -> RateLimiter:
        """At most `count` acquisitions a minute, evenly spaced; 0 or less: unlimited."""
        return cls(count / 60.0 if count > 0 else None, **kwargs)  # type: ignore[arg-type]

    async def acquire(self) -> None:
        if self._bucket is None:
            return
        wait = self._bucket.reserve(self._clock())
        if wait > 0:
            await self._sleep(wait)
