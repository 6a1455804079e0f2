"""The event-loop lag monitor: a loop held by synchronous work shows as lag, and every service's
metrics listener runs one (`<service>_event_loop_lag_seconds`)."""

from __future__ import annotations

import asyncio
import time
import uuid

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Histogram

from services.common.loop_lag import LoopLagMonitor
from services.common.observability import add_observability_routes


def observed(histogram: Histogram) -> tuple[float, float]:
    """(count, sum) of an unlabelled histogram."""
    samples = {s.name: s.value for m in histogram.collect() for s in m.samples}
    return samples["t_event_loop_lag_seconds_count"], samples["t_event_loop_lag_seconds_sum"]


async def wait_for(condition: object, deadline: float = 5.0) -> None:
    end = time.monotonic() + deadline
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < end, "condition not met before the deadline"
        await asyncio.sleep(0.005)


async def test_a_loop_held_by_synchronous_work_is_observed_as_that_much_lag() -> None:
    histogram = Histogram("t_event_loop_lag_seconds", "", registry=CollectorRegistry())
    task = asyncio.create_task(LoopLagMonitor(histogram, interval=0.01).run())
    try:
        await wait_for(lambda: observed(histogram)[0] >= 3)
        count, quiet = observed(histogram)
        assert quiet < 0.05 * count + 0.05, "an idle loop shows (almost) no lag"
        time.sleep(0.2)  # the stall under test: the loop's thread is busy
        await wait_for(lambda: observed(histogram)[0] >= count + 2)
        assert observed(histogram)[1] - quiet >= 0.15
    finally:
        task.cancel()


async def test_every_metrics_listener_exposes_its_services_loop_lag() -> None:
    service = f"svc{uuid.uuid4().hex[:8]}"
    app = web.Application()

    async def ready() -> dict[str, bool]:
        return {"ok": True}

    add_observability_routes(app, service=service, ready=ready)
    async with TestClient(TestServer(app)) as client:

        async def lag_count() -> float:
            text = await (await client.get("/metrics")).text()
            line = f"{service}_event_loop_lag_seconds_count "
            counts = [float(x.split()[-1]) for x in text.splitlines() if x.startswith(line)]
            return counts[0] if counts else 0.0

        end = time.monotonic() + 5.0
        while await lag_count() < 1:
            assert time.monotonic() < end, "no loop-lag observation on /metrics"
            await asyncio.sleep(0.02)


async def test_a_public_listener_without_metrics_runs_no_monitor() -> None:
    app = web.Application()

    async def ready() -> dict[str, bool]:
        return {"ok": True}

    add_observability_routes(app, service="public", ready=ready, metrics=False)
    assert not list(app.cleanup_ctx)
