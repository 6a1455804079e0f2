"""`take_ready` over a real Faust stream (an in-memory channel of the sequencer's app): a lone
record is handed over at once, an idle stream does not wake the agent, and a busy worker's
batch waits at most `within` from its first record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from services.sequencer.entrypoints.take import BUSY_RECORDS, take_ready
from tests.unit.sequencer.support import unit_faust_app


@dataclass
class Taken:
    """What the agent got: each batch's values and when it was handed over."""

    batches: list[tuple[float, list[Any]]] = field(default_factory=list)
    waits: int = 0  # the take loop's waits (each one a mode task, futures, maybe a timer)
    handling: asyncio.Event = field(default_factory=asyncio.Event)  # cleared: a batch is "slow"

    async def next(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.batches) < count:
            assert time.monotonic() < deadline, f"{len(self.batches)} batches, not {count}"
            await asyncio.sleep(0.002)


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[tuple[Any, Taken, Any]]:
    app = unit_faust_app(tmp_path, "unittake.")
    app.flow_control.resume()  # as the consumer does once partitions are assigned
    channel = app.channel()
    stream = channel.stream()
    taken = Taken()
    taken.handling.set()
    wait_for_stopped = stream.wait_for_stopped

    async def counted(*args: Any, **kwargs: Any) -> Any:
        taken.waits += 1
        return await wait_for_stopped(*args, **kwargs)

    stream.wait_for_stopped = counted
    within = 0.2

    async def run() -> None:
        async for batch in take_ready(stream, 1_000, within):
            taken.batches.append((time.monotonic(), [event.value for event in batch]))
            await taken.handling.wait()

    task = asyncio.create_task(run())
    await asyncio.sleep(0.02)  # the stream started and waits
    yield channel, taken, within
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stream.stop()


async def test_a_lone_record_is_handed_over_at_once(agent: Any) -> None:
    channel, taken, within = agent
    sent = time.monotonic()
    await channel.send(value=1)
    await taken.next(1)
    handed, values = taken.batches[0]
    assert values == [1]
    assert handed - sent < within / 2


async def test_an_idle_stream_does_not_wake_the_agent(agent: Any) -> None:
    channel, taken, within = agent
    before = taken.waits
    await asyncio.sleep(within * 3)  # Faust's noack_take times out every `within`: 3 waits
    assert taken.waits == before
    await channel.send(value=1)
    await taken.next(1)
    assert taken.batches[0][1] == [1]


async def test_a_busy_batch_waits_for_more_at_most_within_from_its_first_record(
    agent: Any,
) -> None:
    channel, taken, within = agent
    taken.handling.clear()  # the first batch is slow: the next records queue meanwhile
    await channel.send(value="first")
    await taken.next(1)
    for i in range(BUSY_RECORDS):
        await channel.send(value=i)
    taken.handling.set()
    await taken.next(2)
    assert len(taken.batches[1][1]) == BUSY_RECORDS  # one large batch: busy from now on
    await asyncio.sleep(within * 1.5)  # idle for longer than a window
    sent = time.monotonic()
    await channel.send(value="late")
    await taken.next(3)
    handed, values = taken.batches[2]
    assert values == ["late"]
    assert within * 0.8 <= handed - sent < within * 1.75  # a full window from this record
