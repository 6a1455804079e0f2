"""The batch loop every agent runs its records through.

A batch is processed under one lock shared by all agents (two agents never interleave on the
same lead), live records first: a background batch (the ticks' due steps) lets waiting live
batches (orders, outcomes, signals) go before it, unless it has waited BACKGROUND_MAX_WAIT; and
while orders or signals keep coming it leaves the loop idle after it for as long as it held it,
so due steps take at most about half the loop from them (a night of deferred steps falling due
at opening time made new orders wait over half a second: bench/sequencer/README.md). Each
record is decoded and handed to its use case (with its replay context, if replayed), the
outputs are flushed (acknowledged), the leads written to the tables, the changelog flushed, and
only then does the agent ack the batch. A record that fails for good is dead-lettered and the
batch goes on; one that fails for a while (an outage) is retried alone, with backoff
(failures.py and services.common.poison decide).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from schemas.events import ContactSignal, OrderEvent, TouchPointOutcome
from services.common.domain import hops
from services.common.kafka.codec import decode
from services.common.kafka.partitioning import tenant_key, tenant_of_key
from services.common.poison import classify, gives_up
from services.sequencer.adapters import metrics
from services.sequencer.domain.replay import ReplayContext
from services.sequencer.errors import BadRecord
from services.sequencer.ports import Directory, Outputs, SourceEvent, SourceMessage, Tables
from services.sequencer.service_layer import failures
from services.sequencer.service_layer.replay import ReplayCoordinator, judged_at
from services.sequencer.service_layer.sequencer import Result, Sequencer

#: The records of the source topics.
E = TypeVar("E", OrderEvent, TouchPointOutcome, ContactSignal)

#: Handles one record at an instant (its replay context, if replayed); returns its result label.
Handler = Callable[[SourceEvent, datetime, ReplayContext | None], str]


@dataclass(frozen=True, slots=True)
class Source:
    """A source topic of an agent: its name (the `topic` label of `sequencer_records_total`,
    a dead letter's source) and the handler of its records."""

    name: str
    handle: Handler


APPLIED = "applied"
#: A batch whose synchronous work (handling its records, writing the tables) holds the event
#: loop longer than this is logged: every record and timer of the worker waited that long.
HOLD_WARN_SECONDS = 0.1

#: The sources a background batch gives the loop back to while their records keep coming
#: (within LIVE_SECONDS): a new order's first message and a reply are waited for; outcomes
#: (the ticks' own commands answered) are not, or the ticks would pause for their own work.
PACED_FOR = frozenset({"orders", "signals"})
LIVE_SECONDS = 1.0
#: The longest pause after a background batch (its hold includes a failed record's backoff).
MAX_PAUSE_SECONDS = 0.5
#: A background batch that has waited this long goes before live ones: due steps may be a
#: little late, never held back for as long as live records keep the lock busy.
BACKGROUND_MAX_WAIT = 1.0

log = logging.getLogger(__name__)


@dataclass(slots=True, eq=False)
class _Waiter:
    live: bool
    since: float
    granted: asyncio.Future[None]


class BatchLock:
    """One batch at a time. On release the lock is handed over to the oldest background
    waiter if it has waited BACKGROUND_MAX_WAIT, else the oldest live waiter, else the oldest
    background one."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._held = False
        self._waiters: deque[_Waiter] = deque()

    @asynccontextmanager
    async def holding(self, *, live: bool) -> AsyncIterator[None]:
        await self._acquire(live)
        try:
            yield
        finally:
            self._held = False
            self._hand_over()

    async def _acquire(self, live: bool) -> None:
        waiter = _Waiter(live, self._clock(), asyncio.get_running_loop().create_future())
        self._waiters.append(waiter)
        self._hand_over()  # free: whoever goes first by the rules (this one, if alone)
        try:
            await waiter.granted
        except BaseException:
            if waiter.granted.done() and not waiter.granted.cancelled():  # handed over first
                self._held = False
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            self._hand_over()
            raise

    def _hand_over(self) -> None:
        if self._held:
            return
        waiting = [w for w in self._waiters if not w.granted.done()]
        self._waiters = deque(waiting)
        if not waiting:
            return
        background = next((w for w in waiting if not w.live), None)
        if background is not None and self._clock() - background.since >= BACKGROUND_MAX_WAIT:
            chosen = background
        else:
            chosen = next((w for w in waiting if w.live), waiting[0])
        self._waiters.remove(chosen)
        self._held = True
        chosen.granted.set_result(None)


def _router(agent: str, sources: Mapping[str, Source]) -> Callable[[SourceEvent], Source]:
    """The `Source` of a record, by its topic. An agent of one topic takes every record as
    its own (a test context names none)."""
    if len(sources) == 1:
        [only] = sources.values()
        return lambda _event: only

    def source_of(event: SourceEvent) -> Source:
        found = sources.get(event.message.topic)
        if found is None:  # a topology bug: the agent was given a topic it cannot handle
            raise RuntimeError(f"agent {agent}: no source for topic {event.message.topic!r}")
        return found

    return source_of


def _paced(
    sources: Mapping[str, Source],
    events: Sequence[SourceEvent],
    source_of: Callable[[SourceEvent], Source],
) -> bool:
    """Whether the batch holds records the ticks give way to (PACED_FOR)."""
    names = {source.name for source in sources.values()}
    if not names & PACED_FOR:
        return False
    return names <= PACED_FOR or any(source_of(event).name in PACED_FOR for event in events)


def counted(result: Result) -> str:
    """The result label of a record (`sequencer_records_total`); lead changes counted."""
    if result.leads_changed:
        metrics.LEAD_CHANGES.inc(result.leads_changed)
    if result.duplicate:
        return "duplicate"
    if result.ignored:
        return "ignored"
    return APPLIED


def traced(message: SourceMessage) -> hops.Trace | None:
    """The hops a record carries, plus when it was written to Kafka (None: not traced)."""
    headers = message.headers
    if not headers:
        return None
    trace = hops.Trace.of(headers)
    if not trace.hops:
        return None
    trace.stamp(hops.ORDER_IN_KAFKA, int(message.timestamp * 1_000_000))
    return trace


class BatchProcessor:
    def __init__(
        self,
        *,
        sequencer: Sequencer,
        directory: Directory,
        outputs: Outputs,
        tables: Tables,
        replay: ReplayCoordinator,
        clock: Callable[[], datetime],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sleep = sleep
        self.sequencer = sequencer
        self.directory = directory
        self.outputs = outputs
        self.tables = tables
        self.replay = replay
        self.clock = clock
        self._counters: dict[tuple[str, str], Any] = {}
        self.lock = BatchLock()
        self._live_at = -LIVE_SECONDS  # time.monotonic() of the last live batch

    async def process(
        self,
        agent: str,
        events: Sequence[SourceEvent],
        sources: Mapping[str, Source],
        *,
        background: bool = False,
    ) -> None:
        """One batch of an agent: handle each record (by the `Source` of its topic), flush
        outputs, write tables, flush changelogs. `background`: work that can wait (the ticks)
        and gives way to live records."""
        started = time.perf_counter()
        outputs, tables = self.outputs, self.tables
        source_of = _router(agent, sources)
        async with self.lock.holding(live=not background):
            if _paced(sources, events, source_of):
                self._live_at = time.monotonic()
            try:
                await self.replay.load()  # which replay applies, before the first record
                await self._ensure_tenants(events)
                now = self.clock()
                handling = time.perf_counter()
                make_current, context_for = tables.make_current, self.replay.context_for
                for event in events:
                    make_current(event)
                    source = source_of(event)
                    replay = context_for(event.message)
                    if replay is False:
                        self._count_record(source.name, "replay_skipped")
                        continue
                    at = now if replay is None else judged_at(event.message, now)
                    try:
                        with hops.tracing(traced(event.message)):
                            result = source.handle(event, at, replay)
                    except Exception as exc:  # failures.py decides
                        result = await self._after_failure(source, event, at, replay, exc)
                    self._count_record(source.name, result)
                handled = time.perf_counter()
                await outputs.flush()
                self._count_commands()
                outputs_acked = time.perf_counter()
                tables.write()
                written = time.perf_counter()
                await outputs.flush()
                tables.persist_offsets(outputs.take_changelog_offsets())
            finally:
                tables.discard()
                outputs.discard()
                tables.make_current(None)
                self.sequencer.emitted.clear()
        done = time.perf_counter()
        metrics.BATCH_SECONDS.labels(agent).observe(done - started)
        metrics.BATCH_RECORDS.labels(agent).observe(len(events))
        for stage, seconds in (
            ("handle", handled - started),
            ("outputs_ack", outputs_acked - handled),
            ("tables", written - outputs_acked),
            ("changelog_ack", done - written),
        ):
            metrics.BATCH_STAGE_SECONDS.labels(stage).observe(seconds)
        held = (handled - handling) + (written - outputs_acked)
        if held > HOLD_WARN_SECONDS:
            log.warning(
                "a batch of %d %s records held the event loop for %.0f ms "
                "(handling %.0f ms, table writes %.0f ms)",
                len(events),
                agent,
                held * 1000,
                (handled - handling) * 1000,
                (written - outputs_acked) * 1000,
            )
        if background and time.monotonic() - self._live_at < LIVE_SECONDS:
            await self.sleep(min(held, MAX_PAUSE_SECONDS))  # the loop's other half is theirs

    async def _after_failure(
        self,
        source: Source,
        event: SourceEvent,
        at: datetime,
        replay: ReplayContext | None,
        exc: Exception,
    ) -> str:
        """A record whose handling raised `exc`: tried again while it fails transiently (or
        for an unknown reason, a few times), dead-lettered when it fails for good."""
        tries, name = 1, source.name
        while True:
            failure = classify(exc)
            failures.record_failed(name, event.message, exc, failure)
            if gives_up(failure, tries):
                self.outputs.dead_letter(failures.dead_letter(name, event.message, exc, failure))
                return failures.DEAD_LETTERED
            await self.sleep(failures.retry_delay(tries))
            try:
                return source.handle(event, at, replay)
            except Exception as again:
                exc, tries = again, tries + 1

    def _count_record(self, source: str, result: str) -> None:
        counter = self._counters.get((source, result))
        if counter is None:  # label lookups take a lock and a dict walk: once per pair
            counter = self._counters[(source, result)] = metrics.RECORDS.labels(source, result)
        counter.inc()

    def _count_commands(self) -> None:
        """The batch's commands, now that they are acknowledged: one increment per channel."""
        for channel, count in self.sequencer.take_emitted().items():
            metrics.COMMANDS.labels(channel.value).inc(count)

    async def _ensure_tenants(self, events: Sequence[SourceEvent]) -> None:
        keys = {event.message.key for event in events}  # a batch has few tenants
        ids = {tenant for key in keys if (tenant := tenant_of_key(key)) is not None}
        if ids:
            with failures.retried_later(
                "tenant lookup failed; using cached or default configuration"
            ):
                await self.directory.ensure(ids)

    async def refresh_tenants(self) -> None:
        """Reload every tenant's configuration (a Faust timer)."""
        with failures.retried_later("could not reload tenants; keeping the cached configuration"):
            await self.directory.refresh()

    # the record handlers ----------------------------------------------------------------
    def on_order(self, event: SourceEvent, at: datetime, replay: ReplayContext | None) -> str:
        order = self._decode(OrderEvent, event.message)
        config = self.directory.get(order.tenant_id)
        return counted(self.sequencer.on_order(order, config, at, replay))

    def on_outcome(self, event: SourceEvent, at: datetime, replay: ReplayContext | None) -> str:
        outcome = self._decode(TouchPointOutcome, event.message)
        config = self.directory.get(outcome.tenant_id)
        return counted(self.sequencer.on_outcome(outcome, config, at, replay))

    def on_signal(self, event: SourceEvent, at: datetime, replay: ReplayContext | None) -> str:
        signal = self._decode(ContactSignal, event.message)
        config = self.directory.get(signal.tenant_id)
        return counted(self.sequencer.on_signal(signal, config, at, replay))

    @staticmethod
    def _decode(model: type[E], message: SourceMessage) -> E:
        value = message.value
        decoded = decode(model, value if isinstance(value, bytes) else None)
        tenant = decoded.tenant_id
        if message.key != tenant_key(tenant):
            raise BadRecord(
                f"record key {message.key!r} is not its tenant_id {tenant}: "
                "it would live on another tenant's partition"
            )
        return decoded
