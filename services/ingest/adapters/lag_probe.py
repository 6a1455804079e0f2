"""Consumer lag for the dashboard: read from Kafka in a worker thread, cached a few seconds.

`consumer_lag` talks to the broker synchronously (admin + watermark calls), so it never runs on
the event loop; concurrent page refreshes share one read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from services.common.kafka.lag import PartitionLag
from services.ingest.domain.dashboard import LagReport

log = logging.getLogger(__name__)

LagReader = Callable[[], list[PartitionLag]]


class LagProbe:
    """`await probe.report()`: the last lag reading, refreshed when older than `ttl` seconds;
    while one refresh is under way, other callers get the previous reading at once."""

    def __init__(
        self, read: LagReader, *, ttl: float = 5.0, clock: Callable[[], float] = time.time
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._last: LagReport | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> LagReport:
        if self._fresh():
            assert self._last is not None
            return self._last
        if self._lock.locked() and self._last is not None:
            return self._last  # a read is under way (slow or unreachable broker): no pile-up
        async with self._lock:
            if self._fresh():
                assert self._last is not None
                return self._last
            loop = asyncio.get_running_loop()
            try:
                rows = await loop.run_in_executor(None, self._read)
                self._last = LagReport(rows=rows, as_of=self._clock())
            except Exception as exc:  # any broker/admin failure is shown, never fatal
                log.warning("consumer lag unavailable: %s", exc)
                stale = self._last.rows if self._last else []
                self._last = LagReport(rows=stale, error=str(exc)[:200], as_of=self._clock())
            return self._last

    def _fresh(self) -> bool:
        return self._last is not None and self._clock() - self._last.as_of < self._ttl
