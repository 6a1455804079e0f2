"""The six faults of the chaos suite, each injected once while the steady load runs (blocking
steps run in threads, so the load keeps its rate):

a  SIGKILL one broker mid-load, start it again 15 s later
b  rolling restart of all three brokers (controlled stop, start, wait until in sync; in turn)
c  two sequencer workers, SIGKILL one (its partitions move to the other)
d  SIGKILL outbound mid-batch, start it again 2 s later
e  restart PostgreSQL (the private chaos cluster): fast stop, 5 s down, start
f  SIGSTOP one broker for 20 s, then SIGCONT
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bench.chaos.cluster import LocalCluster
from bench.chaos.pipeline import Pipeline
from bench.chaos.postgres import PrivatePostgres


@dataclass(frozen=True)
class World:
    cluster: LocalCluster
    pipeline: Pipeline
    postgres: PrivatePostgres | None


Fault = Callable[[World], Awaitable[dict[str, float]]]


async def _timed(step: Callable[[], object]) -> float:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.to_thread(step)
    return round(loop.time() - started, 2)


async def kill_broker(world: World) -> dict[str, float]:
    await asyncio.to_thread(world.cluster.kill_node, 2)
    await asyncio.sleep(15)
    restart = await _timed(lambda: world.cluster.start_node(2))
    return {"down_seconds": 15.0, "restart_seconds": restart}


async def rolling_restart(world: World) -> dict[str, float]:
    out = {}
    for node in (1, 2, 3):
        out[f"node{node}_stop_seconds"] = await _timed(lambda n=node: world.cluster.stop_node(n))  # type: ignore[misc]
        out[f"node{node}_start_seconds"] = await _timed(lambda n=node: world.cluster.start_node(n))  # type: ignore[misc]
        out[f"node{node}_resync_seconds"] = await _timed(world.cluster.wait_fully_replicated)
    return out


async def kill_sequencer(world: World) -> dict[str, float]:
    world.pipeline.procs["sequencer-2"].popen.kill()
    return {}


async def kill_outbound(world: World) -> dict[str, float]:
    world.pipeline.procs["outbound"].popen.kill()
    await asyncio.sleep(2)
    proc = world.pipeline.start("outbound")
    ready = await _timed(lambda: world.pipeline.wait(proc.ready, 120, "outbound again"))
    return {"down_seconds": 2.0, "ready_again_seconds": ready}


async def restart_postgres(world: World) -> dict[str, float]:
    assert world.postgres is not None
    stop = await _timed(world.postgres.stop)
    await asyncio.sleep(5)
    start = await _timed(world.postgres.start)
    return {"stop_seconds": stop, "down_seconds": 5.0, "start_seconds": start}


async def pause_broker(world: World) -> dict[str, float]:
    pid = await asyncio.to_thread(world.cluster.pause_node, 2)
    try:
        await asyncio.sleep(20)
    finally:
        world.cluster.resume_node(pid)
    return {"paused_seconds": 20.0}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    fault: Fault
    sequencers: int = 1


SCENARIOS = {
    s.key: s
    for s in (
        Scenario("a", "SIGKILL one broker mid-load, restart it", kill_broker),
        Scenario("b", "rolling restart of all three brokers", rolling_restart),
        Scenario("c", "two sequencer workers, SIGKILL one", kill_sequencer, sequencers=2),
        Scenario("d", "SIGKILL outbound mid-batch, restart it", kill_outbound),
        Scenario("e", "restart PostgreSQL", restart_postgres),
        Scenario("f", "SIGSTOP one broker for 20 s", pause_broker),
    )
}
