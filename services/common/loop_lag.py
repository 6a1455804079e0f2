"""How late the event loop runs what is due: `<service>_event_loop_lag_seconds`.

A task asks to wake every `interval` seconds and records how much later than asked it woke.
Anything that holds the loop (a long synchronous batch, a full garbage collection, a blocking
call, a RocksDB write stall on the loop's thread) shows up as lag of every request and record
waiting behind it, so this one histogram tells a stall from a slow dependency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from prometheus_client import Histogram

#: From well below a scheduler tick to the seconds a stall at scale was seen to last.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INTERVAL_SECONDS = 0.1

_histograms: dict[str, Histogram] = {}


def lag_histogram(service: str) -> Histogram:
    """The process's `<service>_event_loop_lag_seconds` histogram (one per service name)."""
    histogram = _histograms.get(service)
    if histogram is None:
        histogram = _histograms[service] = Histogram(
            f"{service}_event_loop_lag_seconds",
            "How much later than asked the event loop woke a task that sleeps "
            f"{INTERVAL_SECONDS:g} s: the wait anything ready had behind the running code.",
            buckets=BUCKETS,
        )
    return histogram


class LoopLagMonitor:
    """Observes the loop's lag into `histogram` every `interval` seconds until cancelled."""

    def __init__(
        self,
        histogram: Histogram,
        *,
        interval: float = INTERVAL_SECONDS,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.histogram = histogram
        self.interval = interval
        self.clock = clock
        self.sleep = sleep

    async def run(self) -> None:
        observe, clock, sleep = self.histogram.observe, self.clock, self.sleep
        interval = self.interval
        while True:
            asked = clock()
            await sleep(interval)
            observe(max(0.0, clock() - asked - interval))


@contextlib.asynccontextmanager
async def watching_loop(service: str) -> AsyncIterator[LoopLagMonitor]:
    """Runs a `LoopLagMonitor` for `service` on the running loop while the block runs."""
    monitor = LoopLagMonitor(lag_histogram(service))
    task = asyncio.create_task(monitor.run(), name=f"{service}-loop-lag")
    try:
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
