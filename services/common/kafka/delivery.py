"""Delivery reports as asyncio futures: settling them on their event loop, failing the ones past
their deadline, and serving the reports from the sending event loop itself (`poll_in_loop`).

`KafkaProducer` (producer.py) owns the librdkafka producer; what happens between a report and
the future that waits for it lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message, Producer

from services.common.errors import DeliveryError, DeliveryTimeout
from services.common.kafka.threads import batch_librdkafka_threads

log = logging.getLogger(__name__)

#: How often a `poll_in_loop` producer serves delivery reports while records are in flight.
LOOP_POLL_SECONDS = 0.001
#: How often a `batch_threads` producer looks for new librdkafka threads while it sends:
#: 1 s after the first send, then twice as long each time up to this (brokers are discovered
#: shortly after the start, and a thread is created per broker).
BATCH_THREADS_EVERY_SECONDS = 30.0

#: A librdkafka delivery callback.
OnDelivery = Callable[[KafkaError | None, Message], None]


@dataclass(frozen=True, slots=True)
class Delivered:
    topic: str
    partition: int
    offset: int


def delivery_result(err: KafkaError | None, msg: Message) -> Delivered | DeliveryError:
    if err is not None:
        return DeliveryError(f"{msg.topic()}: {err.str()}")
    return Delivered(str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))


Settlement = tuple["asyncio.Future[Delivered]", "Delivered | DeliveryError"]


def settle(future: asyncio.Future[Delivered], result: Delivered | DeliveryError) -> None:
    if future.done():
        return
    if isinstance(result, DeliveryError):
        future.set_exception(result)
    else:
        future.set_result(result)


def settle_all(items: list[Settlement]) -> None:
    for future, result in items:
        settle(future, result)


class _LoopOfThread(threading.local):
    loop: asyncio.AbstractEventLoop | None = None


_loop_of_thread = _LoopOfThread()


def running_loop() -> asyncio.AbstractEventLoop:
    """`asyncio.get_running_loop()` without its system call on the hot path.

    Python 3.11 checks `getpid()` on every call (to notice a fork), a system call that is not
    free on a virtual machine (bench/ingest/README.md). The thread's last running
    loop is kept and reused while it still runs in this thread (asyncio's own loops record
    their thread in `_thread_id`; other loops take the standard call every time). Not for
    code that forks while a loop runs (nothing here does).
    """
    loop = _loop_of_thread.loop
    if loop is not None and getattr(loop, "_thread_id", None) == threading.get_ident():
        return loop
    loop = _loop_of_thread.loop = asyncio.get_running_loop()
    return loop


class Deadlines:
    """Fails the futures of one event loop that are not settled by their deadline.

    One sweep every TICK seconds while anything is pending, instead of a timer handle created
    and cancelled per record (`asyncio.timeout` per record: bench/ingest/README.md).
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


class LoopDelivery:
    """Delivery reports served by the event loop that sent (`KafkaProducer(poll_in_loop=True)`):
    on each send, and on a LOOP_POLL_SECONDS tick while records are in flight. A report served
    on its own loop's thread settles its future directly, without a thread-safe hand-off.

    `batch_threads`: while records are sent, the process's librdkafka threads are kept
    SCHED_BATCH (`threads.py`), checked at the first send and then ever less often.
    """

    def __init__(self, producer: Callable[[], Producer | None], *, batch_threads: bool) -> None:
        """`producer`: the owner's librdkafka producer, None once it is closed."""
        self._producer = producer
        self._batch_threads = batch_threads
        self._threads_check_at: float | None = None
        self._threads_check_every = 1.0
        self._pumps: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = {}
        #: the event loop whose thread is inside `_poll_for` right now
        self._serving: asyncio.AbstractEventLoop | None = None

    def reporter(
        self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Delivered]
    ) -> OnDelivery:
        """The delivery callback of one record sent from `loop`."""
        owner = threading.get_ident()

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            if self._serving is loop and threading.get_ident() == owner:
                settle(future, delivery_result(err, msg))  # served by this loop's own poll
                return
            if loop.is_closed():  # nobody waits any more (and must not break a poll)
                return
            # served by a blocking send, close() or another loop's poll (the loop may
            # close meanwhile: then nobody waits)
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, future, delivery_result(err, msg))

        return on_delivery

    def sent(self, loop: asyncio.AbstractEventLoop, producer: Producer) -> None:
        """After a record was enqueued from `loop`: make sure its reports will be served."""
        if loop not in self._pumps:
            self._pumps[loop] = loop.create_task(self._pump(loop))
        else:  # under load, serve the reports that are in now rather than at the next tick
            self._poll_for(loop, producer)

    def _poll_for(self, loop: asyncio.AbstractEventLoop, producer: Producer) -> None:
        """Serve delivery reports on `loop`'s own thread (see `reporter`)."""
        self._serving = loop
        try:
            producer.poll(0)
        finally:
            self._serving = None

    async def _pump(self, loop: asyncio.AbstractEventLoop) -> None:
        """Serve delivery reports every LOOP_POLL_SECONDS while any record is unacknowledged."""
        batch_threads = self._batch_threads
        try:
            while (producer := self._producer()) is not None and len(producer) > 0:
                if batch_threads:
                    self._check_threads(loop.time())
                await asyncio.sleep(LOOP_POLL_SECONDS)
                if (producer := self._producer()) is not None:  # close() may run meanwhile
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
