"""Faust's aiokafka transport, with a seek back to committed offsets that also seeks to 0, a
guard against records delivered past a gap, and the mapping of our transport settings to
Faust's broker credentials.

Faust drops records it fetched but could not hand to a stream (flow stopped by a rebalance,
a partition paused meanwhile, the generation changed) and relies on `perform_seek` ("seek
stream partitions to committed offsets", also run when recovery ends) to read them again.
aiokafka's `seek_to_committed` seeks only where the committed offset is > 0: where the group
committed offset 0 (`leadctl replay` rewinding to the start of a partition) or nothing yet
(a new group), the position stayed past the dropped records and they were never processed
nor committed. Seen as a replay that never finished: the group's offset stuck at 0 on a
partition whose only record was dropped (tests/integration/sequencer, ~1 run in 5).

Here those partitions go back to where the group starts reading them: offset 0, or the reset
position (`consumer_auto_offset_reset`) when nothing is committed. Changelog partitions are
left alone: the group commits nothing for them, recovery and standbys position them itself.

Records past a gap. Faust takes a record whose offset jumps past the next one it expects for
a gap in the log (transaction markers, compaction) and counts the offsets in between as
processed. Our source topics have no gaps, but a fetch made before a seek back to committed
offsets (recovery's, after a rebalance) can still be handed over after it: its records are
ahead of the new position, Faust marked the records in between as processed, dropped them
when they were fetched again (behind its read offset now) and committed past them. Seen as
records never processed while a broker was SIGKILLed (chaos suite, ~1 run in 5). Here such a
record is not handed over: the partition is sought back to where it was expected to go on
(`FetchGuard`), so every record comes, in order; only a gap that is still there after that
(records deleted by retention) is taken as Faust does.

`KeepCurrentFlowControl` closes the other way Faust loses a fetched record (faust-streaming
issue #596, open): when recovery ends, Faust resumes the stream partitions and seeks them back
to the committed offsets, and only then resumes `app.flow_control`, whose `resume()` empties
every agent's queue. A record fetched between the two (the fetcher runs during recovery, for
the changelogs) was put in a queue and thrown away; the consumer's position was already past
it, and nothing read it again until the next rebalance. Seen as a replay that never finished
(the group's offset stuck at 0 on a partition whose only record was thrown away) and as a
replayed record never judged while the record after it was, and committed past it (Faust does
not see a gap after a committed offset 0). Resuming now keeps the records fetched in the
current generation of the group; only those of an earlier generation (partitions that may be
gone) are dropped, as Faust does. A record kept and also read again after the seek is handled
twice: at least once, and handling a record again changes nothing.

Handing a fetched record to the streams. Faust's drain loop hands each record over with
`wait_first(callback(record), suspend_flow.wait())`: four tasks a record (the callback, the
suspend flag's, the service's stopped and crashed flags'), an `asyncio.wait`, three
cancellations; so that a callback waiting on flow control or a full queue gives way when a
rebalance suspends the flow. Almost every callback waits on nothing: it decodes the record
and puts it in a queue. Here the callback runs at once, up to its first wait, and only a
callback that does wait goes on in Faust's race (`run_until_it_waits`). Same records, same
order, same race where there is one; the worker's loop spent ~15 % of its time on those
tasks (py-spy, bench/sequencer/README.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Mapping,
)
from typing import Any, cast

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.auth import CredentialsT
from mode import Service, ServiceT
from mode.utils.queues import FlowControlEvent

from services.common.kafka.connection import KafkaConnection

log = logging.getLogger(__name__)


async def seek_back_to_committed(
    consumer: AIOKafkaConsumer, *, reset: str, skip_topics: Collection[str] = ()
) -> dict[TopicPartition, int | None]:
    """`consumer.seek_to_committed()`, plus the seeks it leaves out: to 0 where 0 is
    committed, to the `reset` position ('earliest' or 'latest') where nothing is, except on
    `skip_topics`. Returns each assigned partition's committed offset (None: none)."""
    committed: dict[TopicPartition, int | None] = dict(await consumer.seek_to_committed())
    unset = []
    for tp, offset in committed.items():
        if tp.topic in skip_topics:
            continue
        if offset == 0:
            consumer.seek(tp, 0)
        elif offset is None:
            unset.append(tp)
    if unset:
        if reset == "latest":
            await consumer.seek_to_end(*unset)
        else:
            await consumer.seek_to_beginning(*unset)
    return committed


class KeepCurrentFlowControl(FlowControlEvent):
    """`app.flow_control` whose `resume()` keeps the records of the current generation in the
    agents' queues (module docstring); `clear()`, called when partitions are revoked, still
    empties them."""

    def __init__(self, generation: Callable[[], int | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = generation

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()
        generation = self._generation()
        for queue in list(self._queues):
            items = queue._queue  # type: ignore[attr-defined]  # asyncio.Queue's deque
            kept = [item for item in items if _generation_of(item) == generation]
            items.clear()
            items.extend(kept)


def _generation_of(item: Any) -> int | None:
    """The generation an agent queue's event was fetched in (None: not a fetched record)."""
    message = getattr(item, "message", None)
    return getattr(message, "generation_id", None) if message is not None else None


def keep_current_records_on_resume(app: Any) -> None:
    """Install `KeepCurrentFlowControl` as `app.flow_control`, before any queue exists (no
    loop bound: its events take the running loop when waited on, as the app's own would)."""
    app.flow_control = KeepCurrentFlowControl(lambda: app.consumer_generation_id)


#: The longest the broker holds one of the worker's fetches while none of its partitions has a
#: record (Faust asks aiokafka for 1,500 ms). aiokafka has one fetch in flight per broker, of
#: the partitions whose fetched records are all consumed; a partition emptied meanwhile joins
#: only the next one. Once the agents were behind (records of every busy partition still
#: queued when a fetch left), the fetch in flight held only idle partitions (signals, ticks)
#: and kept the busy ones out for its whole wait: the sequencer then sat 1.5-2 s behind at 200
#: orders/s, a third of a core idle, until the load ended (bench/latency/README.md). A fetch
#: with data is answered at once whatever this is; the bound costs only while every partition
#: is idle: a fetch each 50 ms, ~1 % of a core between the worker and the broker.
FETCH_MAX_WAIT_MS = 50


def bound_fetch_wait(consumer: AIOKafkaConsumer, ms: int = FETCH_MAX_WAIT_MS) -> AIOKafkaConsumer:
    """`consumer` (not started yet) with fetches held at most `ms` (FETCH_MAX_WAIT_MS)."""
    if getattr(consumer, "_fetcher", None) is not None:
        raise RuntimeError("the fetch wait is read when the consumer starts: set it before")
    consumer._fetch_max_wait_ms = ms  # read by start() into its Fetcher (aiokafka 0.14)
    return consumer


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> AIOKafkaConsumer:
        return bound_fetch_wait(super()._create_worker_consumer(transport))

    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(self._seek_back)
        return result

    async def _seek_back(self) -> dict[TopicPartition, int | None]:
        app: Any = self.consumer.app
        return await seek_back_to_committed(
            self._ensure_consumer(),
            reset=str(app.conf.consumer_auto_offset_reset),
            skip_topics=app.tables.changelog_topics,
        )


class FetchGuard:
    """Where each partition's next record must be, and what to do with a record that is not
    there. Faust's read offset is ambiguous: after a record it is that record's offset (the
    next is one more), after a seek it is the offset sought (the next is that one); here the
    partitions just sought are known (`moved`) until a record is handed over (`passed`)."""

    def __init__(self) -> None:
        #: partition → offset it was sought to, while no record was handed over since
        self.fresh: dict[Any, int] = {}
        #: partition → the offset it was last sought back to for a gap
        self.sought: dict[Any, int] = {}

    def moved(self, tp: Any, offset: int | None) -> None:
        """A seek put `tp` at `offset` (None: somewhere unknown, e.g. the log's start)."""
        if offset is None:
            self.fresh.pop(tp, None)
        else:
            self.fresh[tp] = offset

    def expected(self, tp: Any, read: int | None) -> int | None:
        """The offset of `tp`'s next record (None: not known)."""
        if tp in self.fresh:
            return self.fresh[tp]
        return None if read is None else read + 1

    def seek_to(self, tp: Any, offset: int, read: int | None) -> int | None:
        """Where to seek `tp` back to instead of handing over the record at `offset`, or None
        to hand it over: it is the next one (or an older one Faust drops), or the gap is
        still there after one seek back (records really gone: retention)."""
        expected = self.expected(tp, read)
        if expected is None or offset <= expected:
            if expected is not None and offset == expected:
                self.fresh.pop(tp, None)  # handed over: from now on read + 1
            return None
        if self.sought.get(tp) == expected:
            self.fresh.pop(tp, None)
            return None
        self.sought[tp] = expected
        self.fresh[tp] = expected
        return expected


def run_until_it_waits(awaitable: Awaitable[Any]) -> Awaitable[Any] | None:
    """Run a coroutine at once, up to its first wait: None if it finished without waiting
    (its result dropped, as Faust's drain loop drops its callbacks'), else an awaitable that
    goes on with it from that wait. What it raises before it waits is raised here. Any other
    awaitable is returned as it is, to be awaited.

    Up to its first wait the coroutine runs in the caller's task and context, after it in
    the task that awaits the rest: only for coroutines that neither look at their task
    (`asyncio.timeout`, task groups) nor set a context variable before that wait and reset
    it after. Faust's conductor callback does neither (it decodes and queues)."""
    if not isinstance(awaitable, Coroutine):
        return awaitable
    try:
        waiting = awaitable.send(None)
    except StopIteration:
        return None
    return _GoOn(awaitable, waiting)


class _GoOn:
    """Awaiting this goes on with `coro`, which yielded `waiting` (what it waits for) to the
    event loop when it was first run: as `await coro` would have, from there on."""

    __slots__ = ("_coro", "_waiting")

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self._coro = coro
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self._coro, self._waiting
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:  # closed: close the coroutine too, as `yield from` does
                coro.close()
                raise
            except BaseException as exc:  # thrown into the awaiting task (e.g. cancelled)
                try:
                    waiting = coro.throw(exc)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = coro.send(sent)
            except StopIteration as done:
                return done.value


class Consumer(faust_aiokafka.Consumer):
    guard: FetchGuard | None = None

    def fetch_guard(self) -> FetchGuard:
        if self.guard is None:
            self.guard = FetchGuard()
        return self.guard

    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def seek_to_committed(self) -> Mapping[TP, int]:
        """Faust's seek back (every rebalance and recovery): the guard learns where each
        partition's next record is."""
        committed = await super().seek_to_committed()
        guard = self.fetch_guard()
        for tp, offset in committed.items():
            guard.moved(tp, offset)
        return committed

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:  # noqa: ASYNC109
        """Faust's records, except those past a gap of a topic it acks: their partition is
        sought back to where its next record is, and its other records of this fetch are
        dropped (they all come again, in order)."""
        guard = self.fetch_guard()
        sought: set[TP] = set()
        acks_enabled_for = self.app.topics.acks_enabled_for
        async for tp, message in super().getmany(timeout):
            if tp in sought:
                continue
            if acks_enabled_for(message.topic):
                target = guard.seek_to(tp, message.offset, self._read_offset.get(tp))
                if target is not None:
                    log.warning(
                        "%s[%d]: fetched offset %d where %d was expected next (a fetch from "
                        "before a seek back?): reading again from %d",
                        tp.topic,
                        tp.partition,
                        message.offset,
                        target,
                        target,
                    )
                    sought.add(tp)
                    await self.seek(tp, target)
                    continue
            yield tp, message

    async def _drain_messages(self, fetcher: ServiceT) -> None:
        """Faust's drain loop (faust-streaming, the version in uv.lock), line for line but for
        how a record is handed over: its callback runs at once and races the suspended flow
        only when it waits (module docstring)."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Service, self)._stopped.is_set
        fetcher_should_stop = cast(Service, fetcher)._stopped.is_set

        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for

        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep

        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(CONSUMER_FETCHING)
                ait = getmany(timeout=1.0)
                # Faust: sometimes getmany is called in a loop never releasing the event loop
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            waiting = run_until_it_waits(callback(message))
                            if waiting is not None:  # flow control, a full queue: Faust's race
                                await self.wait_first(waiting, self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            log.debug("dropped message at offset %d of %s", offset, tp)
                    unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(CONSUMER_FETCHING)


class Transport(faust_aiokafka.Transport):
    """`kafka://` with the consumer above (`app.transport = Transport(...)`)."""

    Consumer = Consumer


def broker_credentials(kafka: KafkaConnection) -> CredentialsT | None:
    """Faust's `broker_credentials` for a connection (aiokafka then gets the same protocol,
    SASL user and verifying TLS context as every librdkafka client); None for PLAINTEXT."""
    if kafka.sasl:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            ssl_context=kafka.ssl_context(),
            mechanism=kafka.sasl_mechanism,
        )
    context = kafka.ssl_context()
    return None if context is None else faust.SSLCredentials(context)
