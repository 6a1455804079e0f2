"""Each Faust agent of the sequencer through `Agent.test_context()` (memory tables, a fake
outbox, fixed tenant configs; reference/streaming.md §1.8)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from faust.types import Message
from prometheus_client import REGISTRY

from schemas.base import Channel, LeadState
from schemas.events import ContactSignal, OrderEvent, OutcomeStatus, SignalKind, TouchPointOutcome
from services.common.domain.replay import ReplayRun
from services.sequencer.adapters import faust_transport
from services.sequencer.adapters.tenant_directory import StaticDirectory
from services.sequencer.bootstrap import build_worker
from services.sequencer.entrypoints.faust_app import SequencerApp
from services.sequencer.service_layer import batches as batches_module
from services.sequencer.service_layer import ticks as ticks_module
from services.sequencer.service_layer.batches import BatchLock
from services.sequencer.settings import SequencerSettings
from tests.unit.sequencer.support import T0, TENANT, FakeOutbox, order, outcome, signal


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def build(
    tmp_path: Path,
    outbox: FakeOutbox,
    clock: Clock,
    *,
    batch_ms: float = 1.0,
    batch_size: int = 10,
    **kw: Any,
) -> SequencerApp:
    settings = SequencerSettings(
        kafka_topic_prefix=f"unit{id(tmp_path)}.",
        kafka_partitions=4,
        sequencer_store="memory://",
        sequencer_data_dir=tmp_path,
        sequencer_batch_size=batch_size,
        sequencer_batch_ms=batch_ms,
    )
    kw.setdefault("directory", StaticDirectory("America/New_York"))
    app = build_worker(settings, outbox=outbox, clock=clock, **kw)
    app.app.loop = asyncio.get_running_loop()
    app.app.finalize()
    app.app.conf.store = "memory://"
    app.app.flow_control.resume()
    return app


@pytest.fixture
async def seq(tmp_path: Path) -> tuple[SequencerApp, FakeOutbox, Clock]:
    outbox, clock = FakeOutbox(), Clock(T0)
    return build(tmp_path, outbox, clock), outbox, clock


#: The topic a record of each kind comes from (an agent may take several).
TOPIC_OF = {
    OrderEvent: "leads.order-events.v1",
    TouchPointOutcome: "leads.touchpoint-outcomes.v1",
    ContactSignal: "leads.contact-signals.v1",
}


def topic_of(agent: Any, kind: str) -> str:
    """The full name of the agent's topic ending in `kind`."""
    [name] = [t for t in agent.channel.topics if t.endswith(kind)]
    return str(name)


async def put_on(ctx: Any, topic: str, value: bytes, key: bytes, *, wait: bool = True) -> None:
    """`ctx.put` (Faust's test context) with the record's topic set: a test context of an
    agent over several topics names none."""
    message = Message(
        topic=topic,
        partition=0,
        offset=ctx.sent_offset,
        timestamp=time.time(),
        timestamp_type=0,
        headers=None,
        key=key,
        value=value,
        checksum=b"",
        serialized_key_size=0,
        serialized_value_size=0,
        generation_id=ctx.app.consumer_generation_id,
    )
    channel = ctx.stream().channel
    await channel.put(await channel.decode(message))
    ctx.sent_offset += 1
    if wait:
        async with ctx.new_value_processed:
            await ctx.new_value_processed.wait()


async def put(agent: Any, *records: Any) -> None:
    async with agent.test_context() as ctx:
        for r in records:
            topic = topic_of(agent, TOPIC_OF[type(r)])
            await put_on(ctx, topic, r.to_bytes(), str(r.tenant_id).encode())
            await asyncio.sleep(0.01)  # each record its own batch (as they arrive live)


async def put_raw(agent: Any, key: bytes, value: bytes, kind: str = TOPIC_OF[OrderEvent]) -> None:
    async with agent.test_context() as ctx:
        await put_on(ctx, topic_of(agent, kind), value, key)
        await asyncio.sleep(0.01)


async def test_the_app_consumes_through_the_transport_that_seeks_back_to_offset_zero(
    seq: Any,
) -> None:
    """faust_transport.py: Faust's own kafka:// transport would leave records it dropped
    unread where the group committed offset 0 (tested against Kafka in tests/integration)."""
    app, _, _ = seq
    assert isinstance(app.app.transport, faust_transport.Transport)
    assert isinstance(app.app.consumer, faust_transport.Consumer)
    assert isinstance(app.app.consumer._thread, faust_transport.ConsumerThread)


class SlowReplays:
    """`ReplayRuns` whose first `current()` (the timer's) waits until released."""

    def __init__(self, run: ReplayRun) -> None:
        self.run = run
        self.release = asyncio.Event()
        self.calls = 0

    async def current(self, app_group: str) -> ReplayRun:
        self.calls += 1
        if self.calls == 1:
            await self.release.wait()
        return self.run

    async def mark_running(self, run_id: uuid.UUID) -> None:
        pass

    async def add_stats(self, run_id: uuid.UUID, delta: dict[str, int]) -> None:
        pass

    async def finish(self, run_id: uuid.UUID) -> None:
        pass

    async def behind(self, app_group: str, end_offsets: dict[str, int]) -> dict[str, int]:
        return {"pending": 1}


async def test_a_batch_that_comes_while_the_timer_loads_the_replay_is_replayed(
    tmp_path: Path,
) -> None:
    """The first batch must know the replay run before it handles a record: when the replay
    timer's first look-up is still waiting on the database, the batch looks it up itself
    instead of handling replayed records as live ones (they would be duplicates: nothing
    re-emitted, and the run would end 'done' without having replayed them)."""
    outbox = FakeOutbox()
    run = ReplayRun(uuid.uuid4(), since=T0 - timedelta(days=1), end_offsets={})
    replays = SlowReplays(run)
    app = build(tmp_path, outbox, Clock(T0), replays=replays)
    run.end_offsets[f"{topic_of(app.live_agent, TOPIC_OF[OrderEvent])}:0"] = 100
    timer = asyncio.create_task(app.replay.poll())
    await asyncio.sleep(0.01)
    assert replays.calls == 1  # the timer waits on the database
    await put(app.live_agent, order())
    replays.release.set()
    await timer
    assert [c.record_only for c in outbox.commands] == [True]
    assert replays.calls == 2


async def test_orders_agent_creates_lead_emits_first_step_and_dedupes(seq: Any) -> None:
    app, outbox, _ = seq
    event = order()
    await put(app.live_agent, event, event)  # a webhook retry: the same event id
    assert [(c.step_index, c.channel) for c in outbox.commands] == [(0, Channel.EMAIL)]
    assert len(outbox.changes) == 1
    change = outbox.changes[0]
    assert change.to_state is LeadState.NEW and change.from_state is None
    assert change.lead.version == 1 and change.lead.customer.email == "sam@example.com"
    lead = app.tables.leads.get(event.lead_id)
    assert lead is not None and 0 in lead.steps
    assert outbox.changelog_records, "table writes go to the changelog"


def commands_counted(channel: str) -> float:
    value = REGISTRY.get_sample_value("sequencer_commands_total", {"channel": channel})
    return value or 0.0


async def test_emitted_commands_are_counted_by_channel(seq: Any) -> None:
    """`sequencer_commands_total` (plotted on the Grafana dashboard) counts the commands."""
    app, outbox, clock = seq
    email, sms = commands_counted("email"), commands_counted("sms")
    await put(app.live_agent, order("o-1"), order("o-2"))
    assert commands_counted("email") - email == 2
    assert commands_counted("sms") == sms
    clock.now = T0 + timedelta(hours=2, minutes=1)  # the SMS step of both leads
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)
    assert commands_counted("sms") - sms == 2
    assert len(outbox.commands) == 4


async def test_orders_agent_dead_letters_bad_records_and_keeps_going(seq: Any) -> None:
    app, outbox, _ = seq
    await put_raw(app.live_agent, str(TENANT).encode(), b"{not json")
    other = order("o-2")
    wrong_key = order("o-3")
    async with app.live_agent.test_context() as ctx:
        orders = topic_of(app.live_agent, TOPIC_OF[OrderEvent])
        await put_on(ctx, orders, wrong_key.to_bytes(), b"another-tenant")
        await put_on(ctx, orders, other.to_bytes(), str(TENANT).encode())
        await asyncio.sleep(0.01)
    assert len(outbox.dead) == 2
    assert "tenant" in outbox.dead[1].reason
    assert [c.lead_id for c in outbox.commands] == [other.lead_id]


async def test_outcomes_agent_sent_contacts_and_deferred_reemits_same_command(seq: Any) -> None:
    app, outbox, clock = seq
    event = order()
    await put(app.live_agent, event)
    first = outbox.commands[-1]
    lead_id = event.lead_id
    assert lead_id is not None
    until = T0 + timedelta(hours=1)
    await put(
        app.live_agent,
        outcome(lead_id, 0, Channel.EMAIL, OutcomeStatus.DEFERRED, until=until),
    )
    assert len(outbox.commands) == 1  # not yet: the re-emission is due at `until`
    clock.now = until + timedelta(seconds=5)
    assert app.ticks.due.has_due(0, clock.now.timestamp())
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)
    again = outbox.commands[-1]
    assert len(outbox.commands) == 2
    assert again.command_id == first.command_id and again.due_at == until
    await put(app.live_agent, outcome(lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT))
    assert outbox.changes[-1].to_state is LeadState.CONTACTED
    assert outbox.changes[-1].lead.touches_sent == 1


async def test_the_live_agent_reads_a_record_as_the_kind_its_topic_carries(seq: Any) -> None:
    """A broken peer writes an order event (and garbage) to the outcomes topic: each is read
    as an outcome, dead-lettered on the outcomes topic's DLQ as such, counted under
    `outcomes`, and never taken for an order; the stream goes on."""
    app, outbox, _ = seq
    agent = app.live_agent
    outcomes = topic_of(agent, TOPIC_OF[TouchPointOutcome])
    stray = order("o-stray")
    dead_before = (
        REGISTRY.get_sample_value(
            "sequencer_records_total", {"topic": "outcomes", "result": "dead_lettered"}
        )
        or 0.0
    )
    async with agent.test_context() as ctx:
        await put_on(ctx, outcomes, stray.to_bytes(), str(TENANT).encode())
        await put_on(ctx, outcomes, b"\x00" * 10_000, str(TENANT).encode())
    assert [d.topic for d in outbox.dead] == [outcomes, outcomes]
    assert all(d.reason.startswith("poison: ContractError: TouchPointOutcome") for d in outbox.dead)
    assert outbox.commands == [] and outbox.changes == []  # no lead came of it
    dead_after = REGISTRY.get_sample_value(
        "sequencer_records_total", {"topic": "outcomes", "result": "dead_lettered"}
    )
    assert dead_after == dead_before + 2
    await put(agent, order("o-1"))  # and the next record is handled
    assert len(outbox.commands) == 1


async def test_orders_and_outcomes_queued_together_are_one_batch_of_the_live_agent(
    seq: Any,
) -> None:
    """One agent takes both topics: an outcome and an order that come together share one
    batch (one round of acknowledgements under the batch lock), each handled as its own
    kind, instead of two agents' batches taking turns."""
    app, outbox, _ = seq
    first = order("o-1")
    await put(app.live_agent, first)
    assert first.lead_id is not None
    before = batches_counted()
    second = order("o-2")
    sent = outcome(first.lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT)
    agent = app.live_agent
    async with agent.test_context() as ctx:
        for record in (sent, second):
            topic = topic_of(agent, TOPIC_OF[type(record)])
            await put_on(ctx, topic, record.to_bytes(), str(record.tenant_id).encode(), wait=False)
        deadline = time.monotonic() + 5.0
        while len(outbox.commands) < 2:
            assert time.monotonic() < deadline, "the records were not handled"
            await asyncio.sleep(0.01)
    batches, records = batches_counted()
    assert (batches - before[0], records - before[1]) == (1, 2)
    assert [c.lead_id for c in outbox.commands] == [first.lead_id, second.lead_id]
    contacted = [c for c in outbox.changes if c.lead.lead_id == first.lead_id]
    assert contacted[-1].to_state is LeadState.CONTACTED


async def test_signals_agent_reply_engages_and_stops_the_sequence(seq: Any) -> None:
    app, outbox, clock = seq
    event = order()
    await put(app.live_agent, event)
    assert event.lead_id is not None
    await put(app.signal_agent, signal(event.lead_id, SignalKind.REPLIED, channel=Channel.SMS))
    assert outbox.changes[-1].to_state is LeadState.ENGAGED
    assert outbox.changes[-1].lead.sequence_stopped
    clock.now = T0 + timedelta(days=20)
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)
    assert len(outbox.commands) == 1  # only the welcome email, ever


async def test_signals_agent_opt_out_turns_channel_off(seq: Any) -> None:
    app, outbox, clock = seq
    event = order()
    await put(app.live_agent, event)
    assert event.lead_id is not None
    await put(app.signal_agent, signal(event.lead_id, SignalKind.OPTED_OUT, channel=Channel.SMS))
    assert outbox.changes[-1].lead.sms_opted_out
    clock.now = T0 + timedelta(days=2)
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)
    assert all(c.channel is Channel.EMAIL for c in outbox.commands)
    assert [c.step_index for c in outbox.commands] == [0, 2]


async def test_ticks_agent_emits_due_steps_once(seq: Any) -> None:
    app, outbox, clock = seq
    event = order()
    await put(app.live_agent, event)
    clock.now = T0 + timedelta(hours=2, minutes=1)  # SMS +2 h (12:01 New York)
    for _ in range(3):
        async with app.tick_agent.test_context() as ctx:
            await ctx.put(b"tick", partition=0)
            await asyncio.sleep(0.01)
    assert [(c.step_index, c.channel) for c in outbox.commands] == [
        (0, Channel.EMAIL),
        (1, Channel.SMS),
    ]


async def tick(app: SequencerApp) -> None:
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)


async def tick_3_s_early(app: SequencerApp, outbox: FakeOutbox, clock: Clock) -> None:
    """A lead whose SMS step falls due mid-bucket, and a tick 3 s before that (same bucket)."""
    event = order()
    assert event.order is not None and event.lead_id is not None
    created = T0 + timedelta(seconds=5)  # SMS step due at 16:00:05 UTC, mid-bucket
    event = event.model_copy(
        update={"order": event.order.model_copy(update={"created_at": created})}
    )
    clock.now = created
    await put(app.live_agent, event)
    assert len(outbox.commands) == 1  # the welcome email
    clock.now = created + timedelta(hours=2) - timedelta(seconds=3)  # same 10 s bucket
    await tick(app)


async def test_a_tick_that_comes_early_keeps_the_lead_in_the_due_index(seq: Any) -> None:
    app, outbox, clock = seq
    await tick_3_s_early(app, outbox, clock)
    assert len(outbox.commands) == 1  # the SMS is not due yet
    assert app.ticks.due.has_due(0, (clock.now + timedelta(seconds=3)).timestamp())
    clock.now += timedelta(seconds=4)
    async with app.tick_agent.test_context() as ctx:
        await ctx.put(b"tick", partition=0)
        await asyncio.sleep(0.01)
    assert [(c.step_index, c.channel) for c in outbox.commands][-1] == (1, Channel.SMS)


async def test_a_lead_not_due_yet_waits_for_the_timer_not_for_another_tick_at_once(
    seq: Any,
) -> None:
    """Put back into the current bucket, the early lead made the partition look due again:
    a tick at once popped it again, and so on until it was due, each tick a Kafka round
    trip under the batch lock (1M leads, bench/sequencer --scale: orders waited seconds)."""
    app, outbox, clock = seq
    await tick_3_s_early(app, outbox, clock)
    assert outbox.ticks == []
    clock.now += timedelta(seconds=10)  # the timer's next tick: the SMS is due
    await tick(app)
    assert [c.channel for c in outbox.commands] == [Channel.EMAIL, Channel.SMS]
    assert outbox.ticks == []


async def test_leads_left_over_by_the_tick_limit_get_another_tick_at_once(
    seq: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, outbox, clock = seq
    monkeypatch.setattr(ticks_module, "TICK_LIMIT", 1)
    await put(app.live_agent, order("o-1"), order("o-2"))
    clock.now = T0 + timedelta(hours=2, minutes=1)  # both SMS steps are due
    await tick(app)
    assert [c.channel for c in outbox.commands] == [Channel.EMAIL, Channel.EMAIL, Channel.SMS]
    assert [partition for _, partition, _ in outbox.ticks] == [0]
    await tick(app)
    assert [c.channel for c in outbox.commands][-1] is Channel.SMS
    assert len(outbox.commands) == 4


def batches_of(agent: str) -> tuple[float, float]:
    """(batches, records) the agent has processed so far."""
    labels = {"agent": agent}
    count = REGISTRY.get_sample_value("sequencer_batch_records_count", labels) or 0.0
    return count, REGISTRY.get_sample_value("sequencer_batch_records_sum", labels) or 0.0


async def test_the_ticks_agent_takes_one_tick_record_per_batch(seq: Any) -> None:
    """A batch's records are evaluated in one go on the event loop: tick records queued
    together (a partition each, TICK_LIMIT leads each) would hold it for all of them."""
    app, _, _ = seq
    batches, records = batches_of("ticks")
    async with app.tick_agent.test_context() as ctx:
        for partition in (0, 1, 2):
            await ctx.put(b"tick", partition=partition)
        await asyncio.sleep(0.05)
    assert batches_of("ticks") == (batches + 3, records + 3)


async def test_a_tick_batch_gives_the_loop_back_for_as_long_as_it_held_it_while_orders_come(
    tmp_path: Path,
) -> None:
    """Due steps falling due in bulk (a night of deferred SMS at opening time) must not take
    the loop from new orders: after a tick batch, while orders came in the last second, the
    ticks agent leaves the loop idle for as long as its batch held it. With no orders, the
    due steps go at full speed."""
    for orders_came in (True, False):
        clock = Clock(T0)
        app = build(tmp_path / str(orders_came), FakeOutbox(), clock)
        for n in range(3):  # three leads whose SMS step falls due
            await put(app.live_agent, order(f"o-{n}"))
        if not orders_came:  # ... a second or more ago
            app.batches._live_at = time.monotonic() - batches_module.LIVE_SECONDS
        slept: list[float] = []

        async def sleep(seconds: float, slept: list[float] = slept) -> None:
            slept.append(seconds)

        app.batches.sleep = sleep
        clock.now = T0 + timedelta(hours=2, minutes=1)
        await tick(app)
        assert len(app.ticks.due.pop_due(0, clock.now.timestamp(), 10)) == 0  # all evaluated
        if orders_came:
            assert len(slept) == 1 and 0 < slept[0] < 1, slept
        else:
            assert slept == []


async def test_a_waiting_order_batch_goes_before_a_tick_batch_that_waited_longer() -> None:
    lock, went = BatchLock(), []

    async def batch(name: str, live: bool) -> None:
        async with lock.holding(live=live):
            went.append(name)
            await asyncio.sleep(0)

    async with lock.holding(live=True):
        tick_batch = asyncio.create_task(batch("ticks", live=False))
        await asyncio.sleep(0)
        order_batch = asyncio.create_task(batch("orders", live=True))
        await asyncio.sleep(0)
    await asyncio.gather(tick_batch, order_batch)
    assert went == ["orders", "ticks"]


async def test_a_tick_batch_that_has_waited_a_second_goes_before_order_batches() -> None:
    """Live records first, but not for ever: while orders kept the lock busy (a backlog after
    a restart), due steps would wait as long as the backlog lasts."""
    now = [0.0]
    lock, went = BatchLock(clock=lambda: now[0]), []

    async def batch(name: str, live: bool) -> None:
        async with lock.holding(live=live):
            went.append(name)

    async with lock.holding(live=True):
        tick_batch = asyncio.create_task(batch("ticks", live=False))
        await asyncio.sleep(0)
        now[0] = batches_module.BACKGROUND_MAX_WAIT
        order_batch = asyncio.create_task(batch("orders", live=True))
        await asyncio.sleep(0)
    await asyncio.gather(tick_batch, order_batch)
    assert went == ["ticks", "orders"]


async def test_a_batch_cancelled_while_waiting_for_the_lock_leaves_it_free() -> None:
    """Cancelled while it waits, or just after the lock was handed to it: either way the
    next batch gets the lock (a worker stopping or losing partitions mid-wait)."""
    lock = BatchLock()
    for handed_over in (False, True):
        async with lock.holding(live=True):
            waiting = asyncio.create_task(lock.holding(live=False).__aenter__())
            await asyncio.sleep(0)
            if not handed_over:
                waiting.cancel()
        if handed_over:  # released: the lock is the waiter's now, and it is cancelled
            waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        async with asyncio.timeout(1):
            async with lock.holding(live=False):
                pass


class FlakyDirectory(StaticDirectory):
    """Tenant configs that fail `failures` times with `error` before they answer."""

    def __init__(self, error: Exception, failures: int) -> None:
        super().__init__("America/New_York")
        self.error, self.failures, self.calls = error, failures, 0

    def get(self, tenant_id: uuid.UUID) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return super().get(tenant_id)


async def flaky(tmp_path: Path, error: Exception, failures: int) -> tuple[Any, FakeOutbox, Any]:
    outbox = FakeOutbox()
    directory = FlakyDirectory(error, failures)
    app = build(tmp_path, outbox, Clock(T0), directory=directory)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    app.batches.sleep = sleep
    return app, outbox, slept


@pytest.mark.parametrize("error", [ConnectionResetError("connection lost"), TimeoutError()])
async def test_a_transient_failure_retries_that_record_with_backoff_and_drops_nothing(
    tmp_path: Path, error: Exception
) -> None:
    app, outbox, slept = await flaky(tmp_path, error, failures=6)
    event = order("o-transient")
    await put(app.live_agent, event)
    assert outbox.dead == []  # an outage is no reason to dead-letter anything
    assert [c.lead_id for c in outbox.commands] == [event.lead_id]
    assert len(slept) == 6 and slept[-1] > slept[0]  # backoff, growing


async def test_an_unknown_failure_is_tried_a_few_times_then_dead_lettered(tmp_path: Path) -> None:
    app, outbox, slept = await flaky(tmp_path, RuntimeError("a bug"), failures=1000)
    poison, after = order("o-poison"), order("o-after")
    await put(app.live_agent, poison)
    [letter] = outbox.dead
    assert letter.reason.startswith("unknown: RuntimeError: a bug")
    assert len(slept) == 2  # three tries in all
    app.batches.directory.failures = 0  # the next record is fine: the stream went on
    await put(app.live_agent, after)
    assert [c.lead_id for c in outbox.commands] == [after.lead_id]


async def test_a_poison_record_is_dead_lettered_after_one_try(tmp_path: Path) -> None:
    app, outbox, slept = await flaky(tmp_path, RuntimeError("never"), failures=0)
    await put_raw(app.live_agent, str(TENANT).encode(), b'{"schema_version": 1}')
    [letter] = outbox.dead
    assert letter.reason.startswith("poison: ContractError: OrderEvent:")
    assert slept == []


class SlowDirectory(StaticDirectory):
    """Tenant configs that hold the event loop `seconds` on every look-up (a stall)."""

    def __init__(self, seconds: float) -> None:
        super().__init__("America/New_York")
        self.seconds = seconds

    def get(self, tenant_id: uuid.UUID) -> Any:
        time.sleep(self.seconds)  # the stall under test: synchronous, on the loop's thread
        return super().get(tenant_id)


HOLD_WARNING = "held the event loop"


async def test_a_batch_that_holds_the_loop_over_100_ms_is_logged_and_a_quick_one_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.sequencer.service_layer.batches")
    quick = build(tmp_path / "quick", FakeOutbox(), Clock(T0))
    await put(quick.live_agent, order())
    assert not [r for r in caplog.records if HOLD_WARNING in r.getMessage()]

    slow = build(tmp_path / "slow", FakeOutbox(), Clock(T0), directory=SlowDirectory(0.12))
    await put(slow.live_agent, order())
    warnings = [r.getMessage() for r in caplog.records if HOLD_WARNING in r.getMessage()]
    assert len(warnings) == 1 and "1 live records" in warnings[0], warnings


async def test_a_lone_record_is_handled_at_once_not_after_the_batch_window(
    tmp_path: Path,
) -> None:
    """Nothing else queued: the batch is handed over now, however long SEQUENCER_BATCH_MS."""
    outbox = FakeOutbox()
    app = build(tmp_path, outbox, Clock(T0), batch_ms=10_000.0)
    async with app.live_agent.test_context() as ctx:
        event = order()
        orders = topic_of(app.live_agent, TOPIC_OF[OrderEvent])
        await put_on(ctx, orders, event.to_bytes(), str(event.tenant_id).encode(), wait=False)
        deadline = time.monotonic() + 5.0  # half the window
        while not outbox.commands:
            assert time.monotonic() < deadline, "the record waited for the batch window"
            await asyncio.sleep(0.01)
    assert [c.lead_id for c in outbox.commands] == [event.lead_id]


def batches_counted() -> tuple[float, float]:
    """(batches, records) the live agent handled so far (`sequencer_batch_records`)."""
    count = REGISTRY.get_sample_value("sequencer_batch_records_count", {"agent": "live"})
    total = REGISTRY.get_sample_value("sequencer_batch_records_sum", {"agent": "live"})
    return count or 0.0, total or 0.0


async def test_while_records_pile_up_a_batch_fills_and_a_quiet_stream_hands_over_at_once(
    tmp_path: Path,
) -> None:
    """After a large batch the worker is busy: the next batch waits (up to the window) for
    more instead of going out with what is queued; after a small one it goes at once."""
    outbox = FakeOutbox()
    app = build(tmp_path, outbox, Clock(T0), batch_ms=600.0, batch_size=1000)
    orders = topic_of(app.live_agent, TOPIC_OF[OrderEvent])
    async with app.live_agent.test_context() as ctx:

        async def put_orders(n: int) -> list[Any]:
            """`n` records queued at once (as a fetch delivers them)."""
            events = [order(f"o-{uuid.uuid4().hex[:10]}") for _ in range(n)]
            for e in events:
                key = str(e.tenant_id).encode()
                await put_on(ctx, orders, e.to_bytes(), key, wait=False)
            return events

        async def handled(events: list[Any]) -> float:
            started, wanted = time.monotonic(), {e.lead_id for e in events}
            while not wanted <= {c.lead_id for c in outbox.commands}:
                assert time.monotonic() - started < 10, "not handled"
                await asyncio.sleep(0.005)
            return time.monotonic() - started

        batches0, _ = batches_counted()
        await handled(await put_orders(300))  # a burst: large batches
        batches1, _ = batches_counted()
        assert batches1 - batches0 <= 3, "a burst is handled in few batches"
        assert await handled(await put_orders(1)) >= 0.4  # busy: waited for the batch to fill
        assert await handled(await put_orders(1)) < 0.4  # quiet again: at once
