"""A typed confluent-kafka producer whose `send` returns only once the broker acknowledged.

One librdkafka producer per process, its delivery reports served with `poll()` by a daemon
thread (or by the sending event loop itself, `poll_in_loop`), and asyncio futures resolved
from the callbacks (DESIGN §9: ~2 ms per lone message, where `AIOProducer` defaults take ~2 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.base import Event
from services.common.errors import DeliveryError, DeliveryTimeout
from services.common.kafka.config import producer_config
from services.common.kafka.threads import batch_librdkafka_threads

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]
#: How often a `poll_in_loop` producer serves delivery reports while records are in flight.
LOOP_POLL_SECONDS = 0.001
#: How often a `batch_threads` producer looks for new librdkafka threads while it sends:
#: 1 s after the first send, then twice as long each time up to this (brokers are discovered
#: shortly after the start, and a thread is created per broker).
BATCH_THREADS_EVERY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def _delivered(err: KafkaError | None, msg: Message) -> Delivered | DeliveryError:
    if err is not None:
        return DeliveryError(f"{msg.topic()}: {err.str()}")
    return Delivered(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))


class KafkaProducer:
    """Owns one librdkafka producer; use `async with` or `start()`/`close()`."""

    def __init__(
        self,
        bootstrap: str,
        *,
        client_id: str,
        config: Mapping[str, Any] | None = None,
        poll_in_loop: bool = False,
        batch_threads: bool = False,
    ) -> None:
        """`config`: librdkafka settings over our defaults (`producer_config`).

        `poll_in_loop`: serve delivery reports from the event loop of `submit`/`send` (on
        each send, and on a 1 ms tick while records are in flight) instead of a poll thread:
        no thread hand-off, GIL switch or wake-up per batch, at most 1 ms more per
        acknowledgement. For processes whose sends all come from one event loop (ingest);
        blocking sends poll for themselves.

        `batch_threads` (with `poll_in_loop`): while records are sent, the process's librdkafka
        threads are kept SCHED_BATCH (`threads.py`): on a saturated core their wake-ups no
        longer preempt the event loop once per record.
        """
        self._config = producer_config(bootstrap, client_id=client_id) | dict(config or {})
        self._poll_in_loop = poll_in_loop
        self._batch_threads = batch_threads
        self._threads_check_at: float | None = None
        self._threads_check_every = 1.0
        self._pumps: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        self._producer: Producer | None = None
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        # delivery reports waiting to be handed to their event loops, one hand-off per loop
        # per poll() batch instead of one thread-safe wake-up per record
        self._settled: dict[asyncio.AbstractEventLoop, list[_Settlement]] = {}
        self._deadlines: dict[asyncio.AbstractEventLoop, _Deadlines] = {}
        #: the event loop whose thread is inside `_poll_for` right now (poll_in_loop mode)
        self._serving: asyncio.AbstractEventLoop | None = None

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = Producer(self._config)
            self._running.set()
            if self._poll_in_loop:
                return self
            self._thread = threading.Thread(
                target=self._serve, name="kafka-producer-poll", daemon=True
            )
            self._thread.start()
        return self

    def _serve(self) -> None:
        producer = self._producer
        assert producer is not None
        while self._running.is_set():
            producer.poll(0.05)
            self._hand_over()

    def _hand_over(self) -> None:
        """Called on the poll thread only (where the delivery callbacks run)."""
        if not self._settled:
            return
        batches, self._settled = self._settled, {}
        for loop, items in batches.items():
            try:
                loop.call_soon_threadsafe(_settle_all, items)
            except RuntimeError:  # that loop is closed: nobody waits any more
                log.debug("dropping %d delivery reports for a closed event loop", len(items))

    def close(self, timeout: float = 10.0) -> int:
        """Flush what is in flight, stop the poll thread; returns records left undelivered."""
        if self._producer is None:
            return 0
        self._running.clear()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        left = self._producer.flush(timeout)
        self._hand_over()
        self._producer = None
        if left:
            log.error("producer closed with %d records undelivered", left)
        return int(left)

    async def __aenter__(self) -> KafkaProducer:
        return self.start()

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    @property
    def raw(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("producer not started")
        return self._producer

    # sending -------------------------------------------------------------------------------
    def _enqueue(
        self,
        topic: str,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None,
        callback: Any,
    ) -> None:
        if isinstance(key, str):
            key = key.encode()
        deadline = None
        while True:
            try:
                self.raw.produce(topic, value=value, key=key, headers=headers, on_delivery=callback)
                return
            except BufferError:
                if deadline is None:
                    deadline = time.monotonic() + 5.0
                elif time.monotonic() > deadline:
                    raise DeliveryError("producer queue full for 5 s") from None
                if self._poll_in_loop:  # no poll thread: serve reports to make room
                    self.raw.poll(0.005)
                else:
                    time.sleep(0.005)
            except KafkaException as exc:
                raise DeliveryError(str(exc)) from exc

    def submit(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        timeout: float | None = None,
    ) -> asyncio.Future[Delivered]:
        """Produce one record; the future resolves once the broker acknowledged it (acks=all),
        or fails with DeliveryError, or with DeliveryTimeout after `timeout` seconds."""
        loop = running_loop()
        future: asyncio.Future[Delivered] = loop.create_future()
        if self._poll_in_loop:
            owner = threading.get_ident()

            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                if self._serving is loop and threading.get_ident() == owner:
                    _settle(future, _delivered(err, msg))  # served by this loop's own poll
                    return
                if loop.is_closed():  # nobody waits any more (and must not break a poll)
                    return
                # served by a blocking send, close() or another loop's poll (the loop may
                # close meanwhile: then nobody waits)
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(_settle, future, _delivered(err, msg))

        else:

            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                self._settled.setdefault(loop, []).append((future, _delivered(err, msg)))

        self._enqueue(topic, key, value, headers, on_delivery)
        if self._poll_in_loop:
            if loop not in self._pumps:
                self._pumps[loop] = loop.create_task(self._pump(loop))
            else:  # under load, serve the reports that are in now rather than at the next tick
                self._poll_for(loop, self.raw)
        if timeout is not None:
            deadlines = self._deadlines.get(loop)
            if deadlines is None:
                for closed in [other for other in self._deadlines if other.is_closed()]:
                    del self._deadlines[closed]
                deadlines = self._deadlines[loop] = _Deadlines(loop)
            deadlines.watch(future, timeout)
        return future

    def _poll_for(self, loop: asyncio.AbstractEventLoop, producer: Producer) -> None:
        """Serve delivery reports on `loop`'s own thread: their futures are settled directly
        (see `submit`), without a thread-safe hand-off."""
        self._serving = loop
        try:
            producer.poll(0)
        finally:
            self._serving = None

    async def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve delivery reports every LOOP_POLL_SECONDS while any record is unacknowledged."""
        batch_threads = self._batch_threads
        try:
            while (producer := self._producer) is not None and len(producer) > 0:
                if batch_threads:
                    self._check_threads(loop.time())
                await asyncio.sleep(LOOP_POLL_SECONDS)
                if (producer := self._producer) is not None:  # close() may run meanwhile
                    self._poll_for(loop, producer)
        finally:
            self._pumps.pop(loop, None)

    def _check_threads(self, now: float) -> None:
        """At the first send, then after 1, 2, 4 ... BATCH_THREADS_EVERY_SECONDS: threads of
        brokers discovered since are made SCHED_BATCH too."""
        due = self._threads_check_at
        if due is not None and now < due:
            return
        if due is not None:
            self._threads_check_every = min(
                self._threads_check_every * 2, BATCH_THREADS_EVERY_SECONDS
            )
        self._threads_check_at = now + self._threads_check_every
        if changed := batch_librdkafka_threads():
            log.debug("%d librdkafka threads made SCHED_BATCH", changed)

    async def send_raw(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
    ) -> Delivered:
        """Produce one record and wait until the broker acknowledged it (acks=all)."""
        return await self.submit(topic, key=key, value=value, headers=headers)

    async def send(
        self, topic: str, event: Event, *, key: str, headers: Headers | None = None
    ) -> Delivered:
        """Send a contract model as JSON, keyed (by tenant) and acknowledged."""
        return await self.submit(topic, key=key, value=event.to_bytes(), headers=headers)

    def _wait(self, done: threading.Event, timeout: float) -> bool:
        """Wait for a blocking send's reports; without a poll thread, serve them here."""
        if not self._poll_in_loop:
            return done.wait(timeout)
        deadline = time.monotonic() + timeout
        while not done.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.raw.poll(min(left, 0.05))
        return True

    def send_sync(
        self,
        topic: str,
        *,
        key: str | bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        timeout: float = 30.0,
    ) -> Delivered:
        """Blocking form for threads and CLIs: produce, then wait for this record's report."""
        done = threading.Event()
        box: list[Delivered | DeliveryError] = []

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            box.append(_delivered(err, msg))
            done.set()

        self._enqueue(topic, key, value, headers, on_delivery)
        if not self._wait(done, timeout):
            raise DeliveryError(f"{topic}: no acknowledgement within {timeout:.0f} s")
        result = box[0]
        if isinstance(result, DeliveryError):
            raise result
        return result

    def send_many_sync(
        self, records: list[tuple[str, str | bytes | None, bytes]], timeout: float = 60.0
    ) -> list[Delivered]:
        """Produce a batch (topic, key, value) and wait for all acknowledgements, in order."""
        results: list[Delivered | DeliveryError | None] = [None] * len(records)
        remaining = [len(records)]
        done = threading.Event()
        lock = threading.Lock()

        def make_cb(i: int) -> Any:
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                results[i] = _delivered(err, msg)
                with lock:
                    remaining[0] -= 1
                    if remaining[0] == 0:
                        done.set()

            return on_delivery

        if not records:
            return []
        for i, (topic, key, value) in enumerate(records):
            self._enqueue(topic, key, value, None, make_cb(i))
        if not self._wait(done, timeout):
            raise DeliveryError(f"{remaining[0]} records unacknowledged after {timeout:.0f} s")
        out: list[Delivered] = []
        for r in results:
            if isinstance(r, DeliveryError) or r is None:
                raise r or DeliveryError("missing delivery report")
            out.append(r)
        return out


_Settlement = tuple["asyncio.Future[Delivered]", "Delivered | DeliveryError"]


class _LoopOfThread(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_loop_of_thread = _LoopOfThread()


def running_loop() -> asyncio.AbstractEventLoop:
    """`asyncio.get_running_loop()` without its system call on the hot path.

    Python 3.11 checks `getpid()` on every call (to notice a fork); on a virtual machine that
    system call cost ~3 us, and a webhook made three such calls. The thread's last running
    loop is kept and reused while it still runs in this thread (asyncio's own loops record
    their thread in `_thread_id`; other loops take the standard call every time). Not for
    code that forks while a loop runs (nothing here does).
    """
    loop = _loop_of_thread.loop
    if loop is not None and getattr(loop, "_thread_id", None) == threading.get_ident():
        return loop
    loop = _loop_of_thread.loop = asyncio.get_running_loop()
    return loop


def _settle(future: asyncio.Future[Delivered], result: Delivered | DeliveryError) -> None:
    if future.done():
        return
    if isinstance(result, DeliveryError):
        future.set_exception(result)
    else:
        future.set_result(result)


def _settle_all(items: list[_Settlement]) -> None:
    for future, result in items:
        _settle(future, result)


class _Deadlines:
    """Fails the futures of one event loop that are not settled by their deadline.

    One sweep every TICK seconds while anything is pending, instead of a timer handle created
    and cancelled per record (`asyncio.timeout` cost ~5 us a record on the ingest hot path).
    Records with the same timeout expire in the order they were sent, so each timeout has a
    FIFO queue and a sweep only looks at queue heads.
    """

    TICK = 0.05

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queues: dict[float, deque[tuple[float, asyncio.Future[Delivered]]]] = {}
        self._task: asyncio.Task[None] | None = None

    def watch(self, future: asyncio.Future[Delivered], timeout: float) -> None:
        queue = self._queues.get(timeout)
        if queue is None:
            queue = self._queues[timeout] = deque()
        queue.append((self._loop.time() + timeout, future))
        if self._task is None:
            self._task = self._loop.create_task(self._sweep())

    async def _sweep(self) -> None:
        try:
            while any(self._queues.values()):
                await asyncio.sleep(self.TICK)
                now = self._loop.time()
                for timeout, queue in self._queues.items():
                    while queue and (queue[0][1].done() or queue[0][0] <= now):
                        _, future = queue.popleft()
                        if not future.done():
                            future.set_exception(
                                DeliveryTimeout(f"no acknowledgement within {timeout:g} s")
                            )
        finally:
            self._task = None
