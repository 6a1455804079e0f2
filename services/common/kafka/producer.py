"""A typed confluent-kafka producer whose `send` returns only once the broker acknowledged.

One librdkafka producer per process, its delivery reports served with `poll()` by a daemon
thread (or by the sending event loop itself, `poll_in_loop`: delivery.py), and asyncio futures
resolved from the callbacks (DESIGN §9: ~2 ms per lone message, where `AIOProducer` defaults
take ~2 s). Records produced together and acknowledged once per partition: partition_buffer.py.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from schemas.base import Event
from services.common.domain.dead_letter import Headers
from services.common.errors import DeliveryError
from services.common.kafka.config import producer_config
from services.common.kafka.connection import KafkaTarget
from services.common.kafka.delivery import (
    Deadlines,
    Delivered,
    LoopDelivery,
    OnDelivery,
    Settlement,
    delivery_result,
    running_loop,
    settle_all,
)

log = logging.getLogger(__name__)


class KafkaProducer:
    """Owns one librdkafka producer; use `async with` or `start()`/`close()`."""

    def __init__(
        self,
        kafka: KafkaTarget,
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
        self._config = producer_config(kafka, client_id=client_id) | dict(config or {})
        self._producer: Producer | None = None
        #: serves the delivery reports on the sending loop (poll_in_loop), else None
        self._in_loop = (
            LoopDelivery(lambda: self._producer, batch_threads=batch_threads)
            if poll_in_loop
            else None
        )
        self._thread: threading.Thread | None = None
        self._running = threading.Event()
        # delivery reports waiting to be handed to their event loops, one hand-off per loop
        # per poll() batch instead of one thread-safe wake-up per record
        self._settled: dict[asyncio.AbstractEventLoop, list[Settlement]] = {}
        self._deadlines: dict[asyncio.AbstractEventLoop, Deadlines] = {}

    # lifecycle -----------------------------------------------------------------------------
    def start(self) -> KafkaProducer:
        if self._producer is None:
            self._producer = Producer(self._config)
            self._running.set()
            if self._in_loop is not None:
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
                loop.call_soon_threadsafe(settle_all, items)
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
        callback: OnDelivery,
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
                if self._in_loop is not None:  # no poll thread: serve reports to make room
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
        in_loop = self._in_loop
        if in_loop is not None:
            self._enqueue(topic, key, value, headers, in_loop.reporter(loop, future))
            in_loop.sent(loop, self.raw)
        else:

            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                self._settled.setdefault(loop, []).append((future, delivery_result(err, msg)))

            self._enqueue(topic, key, value, headers, on_delivery)
        if timeout is not None:
            deadlines = self._deadlines.get(loop)
            if deadlines is None:
                for closed in [other for other in self._deadlines if other.is_closed()]:
                    del self._deadlines[closed]
                deadlines = self._deadlines[loop] = Deadlines(loop)
            deadlines.watch(future, timeout)
        return future

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
        if self._in_loop is None:
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
            box.append(delivery_result(err, msg))
            done.set()

        self._enqueue(topic, key, value, headers, on_delivery)
        if not self._wait(done, timeout):
            raise DeliveryError(f"{topic}: no acknowledgement within {timeout:.0f} s")
        result = box[0]
        if isinstance(result, DeliveryError):
            raise result
        return result
