"""`KeepCurrentFlowControl` (faust_transport.py): when recovery ends Faust resumes
`app.flow_control`, and Faust's own `resume()` empties every agent's queue, records fetched in
the current generation of the group included; their partitions' positions are already past
them, so they were lost until the next rebalance (a replay stuck on a lone record at offset 0,
faust-streaming issue #596). Ours keeps them and drops only records of an earlier generation."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from services.sequencer.adapters import faust_transport
from services.sequencer.adapters.faust_transport import KeepCurrentFlowControl
from tests.unit.sequencer.support import unit_faust_app


@dataclass
class Message:
    offset: int
    generation_id: int | None


@dataclass
class Event:
    message: Message
    value: bytes = field(default=b"{}")


def queued(flow: FlowControlEvent, *items: Any) -> FlowControlQueue[Any]:
    queue: FlowControlQueue[Any] = FlowControlQueue(flow_control=flow, clear_on_resume=True)
    for item in items:
        queue.put_nowait(item)
    return queue


def contents(queue: FlowControlQueue[Any]) -> list[Any]:
    return [queue.get_nowait() for _ in range(queue.qsize())]


async def test_resuming_keeps_the_records_fetched_in_the_current_generation() -> None:
    generation = 3
    flow = KeepCurrentFlowControl(lambda: generation)
    current = [Event(Message(0, 3)), Event(Message(1, 3))]
    stale = Event(Message(7, 2))
    orders = queued(flow, current[0], stale, current[1], "not a record")
    outcomes = queued(flow, Event(Message(4, 3)))
    flow.resume()
    assert flow.is_active()
    assert contents(orders) == current  # in their order; the stale one and the rest dropped
    assert contents(outcomes) == [Event(Message(4, 3))]


async def test_faust_own_resume_loses_them_which_is_what_ours_fixes() -> None:
    """The failure this guards against, shown on Faust's class: every record thrown away."""
    flow = FlowControlEvent()
    orders = queued(flow, Event(Message(0, 3)))
    flow.resume()
    assert contents(orders) == []


async def test_clear_on_revocation_still_empties_every_queue() -> None:
    flow = KeepCurrentFlowControl(lambda: 3)
    orders = queued(flow, Event(Message(0, 3)), Event(Message(1, 2)))
    flow.suspend()
    flow.clear()
    assert contents(orders) == []
    assert not flow.is_active()


async def test_a_producer_waiting_on_suspended_flow_goes_on_once_resumed() -> None:
    flow = KeepCurrentFlowControl(lambda: 1)
    waiter = asyncio.ensure_future(flow.acquire())
    await asyncio.sleep(0)
    assert not waiter.done()
    flow.resume()
    await asyncio.wait_for(waiter, 1.0)


def test_the_sequencer_app_uses_it_for_every_agent_queue(tmp_path: Path) -> None:
    app = unit_faust_app(tmp_path, "unitflow.")
    assert isinstance(app.flow_control, faust_transport.KeepCurrentFlowControl)
    app.consumer_generation_id = 5
    topic = app.topic("unitflow.orders")
    queue = topic.clone(is_iterator=True).queue  # an agent's stream channel
    queue.put_nowait(Event(Message(0, 5)))
    app.flow_control.resume()
    assert queue.qsize() == 1
