"""How the sequencer's consumer hands fetched records to the streams (`faust_transport.py`).

Faust's drain loop wraps every record's callback in `wait_first`: four tasks a record, so that
a callback waiting on flow control gives way when a rebalance suspends the flow. Ours runs the
callback at once and races the flow only when the callback waits (`run_until_it_waits`).
These tests drive the real drain loop of the worker's consumer (the unit app's, never started)
with a fake fetch and callbacks that wait or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode import Service

from services.sequencer.adapters.faust_transport import Consumer, run_until_it_waits
from tests.unit.sequencer.support import unit_faust_app

TOPIC = "unitdrain.orders"
TP0 = TP(TOPIC, 0)


@dataclass
class Message:
    offset: int
    topic: str = TOPIC


class Fetcher(Service):
    """The service whose stop ends the drain loop (Faust's `Fetcher`)."""


def drained(consumer: Consumer, fetcher: Fetcher, offsets: list[int]) -> None:
    """The consumer's fetch gives `offsets` of TP0, then the fetcher stops."""

    async def getmany(timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        for offset in offsets:
            yield TP0, Message(offset)
        fetcher._stopped.set()

    consumer.getmany = getmany  # type: ignore[method-assign]


@pytest.fixture
async def consumer(tmp_path: Path) -> Consumer:
    """The worker's consumer, made on the test's event loop (as the worker's is on its own)."""
    found = unit_faust_app(tmp_path, "unitdrain.").consumer
    assert isinstance(found, Consumer)
    return found


@contextmanager
def counting_tasks() -> Iterator[list[int]]:
    """Counts the tasks the running loop creates meanwhile (in a one-item list)."""
    loop = asyncio.get_running_loop()
    created = [0]

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        created[0] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    try:
        yield created
    finally:
        loop.set_task_factory(None)


@pytest.mark.parametrize(("drain_loop", "tasks_a_record"), [("ours", 0), ("faust's own", 4)])
async def test_records_whose_callbacks_wait_on_nothing_go_over_in_order_and_without_tasks(
    consumer: Consumer, drain_loop: str, tasks_a_record: int
) -> None:
    """Ours makes no task a record; Faust's own makes four, which is what ours saves."""
    fetcher = Fetcher()
    seen: list[int | str] = []

    async def callback(message: Message) -> None:
        seen.append(message.offset)

    consumer.callback = callback  # type: ignore[assignment]
    drained(consumer, fetcher, list(range(250)))
    with counting_tasks() as created:
        if drain_loop == "ours":
            await consumer._drain_messages(fetcher)
        else:
            await faust_aiokafka.Consumer._drain_messages(consumer, fetcher)
    assert seen == list(range(250))
    assert consumer._read_offset[TP0] == 249
    assert created[0] == 1 + tasks_a_record * 250  # 1: the sleep(0) after the fetch


async def test_a_callback_that_waits_is_waited_for_before_the_next_record(
    consumer: Consumer,
) -> None:
    fetcher = Fetcher()
    seen: list[int | str] = []
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(message: Message) -> None:
        if message.offset == 1:
            seen.append("1 waits")
            seen.append(f"1 got {await gate}")  # what it waited for comes back to it
        seen.append(message.offset)

    consumer.callback = callback  # type: ignore[assignment]
    drained(consumer, fetcher, [0, 1, 2])
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [0, "1 waits"]
    gate.set_result("the queue's room")
    await asyncio.wait_for(drain, 1.0)
    assert seen == [0, "1 waits", "1 got the queue's room", 1, 2]


async def test_a_waiting_callback_gives_way_when_the_flow_is_suspended(
    consumer: Consumer,
) -> None:
    """As in Faust's loop: a rebalance suspends the flow, the waiting callback is cancelled
    (its record goes again after the seek back to committed offsets), the loop goes on."""
    fetcher = Fetcher()
    seen: list[int | str] = []

    async def callback(message: Message) -> None:
        try:
            if message.offset == 1:
                await asyncio.Event().wait()  # e.g. flow control suspended: never by itself
            seen.append(message.offset)
        except asyncio.CancelledError:
            seen.append(f"{message.offset} cancelled")
            raise

    consumer.callback = callback  # type: ignore[assignment]
    drained(consumer, fetcher, [0, 1, 2])
    drain = asyncio.ensure_future(consumer._drain_messages(fetcher))
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [0]
    consumer.suspend_flow.set()
    await asyncio.wait_for(drain, 1.0)
    await asyncio.sleep(0)
    # the cancellation reaches record 1's callback at the loop's next turn, as in Faust's
    # loop; record 2's ran at once meanwhile (in Faust's, its task ran after): a cancelled
    # callback hands nothing over, so which comes first changes nothing. (In the worker a
    # suspension also stops the fetch, so no record follows it; this fetch is a fake.)
    assert seen[0] == 0 and sorted(map(str, seen[1:])) == ["1 cancelled", "2"]


@pytest.mark.parametrize("waits_first", [False, True])
async def test_a_callback_that_raises_stops_the_loop_with_its_error(
    consumer: Consumer, waits_first: bool
) -> None:
    fetcher = Fetcher()

    async def callback(message: Message) -> None:
        if message.offset == 1:
            if waits_first:
                await asyncio.sleep(0.001)
            raise ValueError("a broken record")

    consumer.callback = callback  # type: ignore[assignment]
    drained(consumer, fetcher, [0, 1, 2])
    with pytest.raises(ValueError, match="a broken record"):
        await consumer._drain_messages(fetcher)
    assert consumer._read_offset[TP0] == 0


# run_until_it_waits on its own --------------------------------------------------------------


async def test_a_coroutine_that_never_waits_has_run_when_it_returns() -> None:
    done = []

    async def work() -> int:
        done.append(True)
        return 1

    assert run_until_it_waits(work()) is None
    assert done == [True]


async def test_what_it_raises_before_waiting_is_raised_at_once() -> None:
    async def work() -> None:
        raise KeyError("at once")

    with pytest.raises(KeyError, match="at once"):
        run_until_it_waits(work())


async def test_a_coroutine_that_waits_goes_on_as_awaiting_it_would() -> None:
    loop = asyncio.get_running_loop()
    first: asyncio.Future[int] = loop.create_future()
    steps: list[Any] = []

    async def work() -> str:
        steps.append(("got", await first))
        await asyncio.sleep(0)  # a bare yield to the loop, too
        steps.append("slept")
        return "result"

    going_on = run_until_it_waits(work())
    assert going_on is not None and steps == []
    task = asyncio.ensure_future(going_on)
    await asyncio.sleep(0)
    assert not task.done()
    first.set_result(7)
    assert await asyncio.wait_for(task, 1.0) == "result"
    assert steps == [("got", 7), "slept"]


async def test_a_bare_yield_to_the_loop_as_first_wait_goes_on_too() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "after the yield"

    going_on = run_until_it_waits(work())
    assert going_on is not None
    assert await asyncio.wait_for(asyncio.ensure_future(going_on), 1.0) == "after the yield"


async def test_an_error_after_the_wait_reaches_whoever_awaits_it() -> None:
    async def work() -> None:
        await asyncio.sleep(0)
        raise LookupError("later")

    going_on = run_until_it_waits(work())
    assert going_on is not None
    with pytest.raises(LookupError, match="later"):
        await going_on


async def test_cancelling_the_awaiting_task_cancels_the_coroutine_where_it_waits() -> None:
    seen = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("cleaned up")

    going_on = run_until_it_waits(work())
    assert going_on is not None
    task = asyncio.ensure_future(going_on)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cleaned up"]


async def test_a_coroutine_that_handles_its_cancellation_returns_as_it_would_awaited() -> None:
    async def work() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "stopped cleanly"
        return "never"

    going_on = run_until_it_waits(work())
    assert going_on is not None
    task = asyncio.ensure_future(going_on)
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "stopped cleanly"


async def test_closing_it_closes_the_coroutine() -> None:
    seen = []

    async def work() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            seen.append("closed")

    going_on = run_until_it_waits(work())
    assert going_on is not None
    steps = going_on.__await__()
    assert isinstance(steps, Generator)
    next(steps)  # what the coroutine first waited for, handed to a task again
    steps.close()
    assert seen == ["closed"]


async def test_any_other_awaitable_comes_back_as_it_is() -> None:
    future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    assert run_until_it_waits(future) is future
