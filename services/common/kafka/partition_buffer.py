"""Records produced together, per partition, and awaited as one: no future and no delivery
report per record.

`PartitionBuffer` over a `KafkaProducer` (its librdkafka producer and poll thread): `add` buffers
a record for a given partition, `add_keyed` one for the partition the murmur2 partitioner gives
its key (as librdkafka's `murmur2_random`, aiokafka and Java would: partitioning.py), `produce`
sends one record at once with its own report. `await flush()` produces the buffers, only the
last record of each partition with a delivery report (the idempotent producer acknowledges a
partition in order, so the records before it share its fate), and returns only when everything
produced so far was acknowledged by the broker (acks=all). A record the broker refused is
produced again until it is accepted: an outage pauses the caller, nothing is dropped.

`flush()` does not call librdkafka's `flush()`: that one polls in 10 ms slices while the
producer's own poll thread serves the same delivery reports, so each flush waited that much
longer than the broker's ack. Here the delivery callback that settles the last pending record
wakes the waiting flush directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaError, Message

from services.common.domain.dead_letter import Headers
from services.common.domain.replay import TP
from services.common.kafka.delivery import OnDelivery
from services.common.kafka.partitioning import partition_of_key
from services.common.kafka.producer import KafkaProducer

log = logging.getLogger(__name__)

#: (topic, partition or None: the partitioner's choice, key, value, headers)
Record = tuple[str, int | None, bytes | None, bytes | None, Headers | None]

#: A flush that waits longer than this logs how many records are still unacknowledged.
FLUSH_WARN_SECONDS = 30.0


def _wake(waiting: asyncio.Future[None]) -> None:
    if not waiting.done():
        waiting.set_result(None)


@dataclass(slots=True)
class _Failure:
    record: Record
    error: str
    tracked: bool


class PartitionBuffer:
    """Buffered, per-partition produce over one `KafkaProducer`; one flush at a time."""

    #: seconds one partition-metadata request may take before it is retried
    metadata_timeout = 10.0

    def __init__(self, producer: KafkaProducer) -> None:
        self._producer = producer
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._offsets: dict[TP, int] = {}
        self._buffer: dict[TP, list[tuple[bytes | None, bytes | None]]] = {}
        # (topic, key) → values and their headers
        self._keyed: dict[tuple[str, str], list[tuple[bytes, Headers | None]]] = {}
        self._placed: dict[tuple[str, str], tuple[int, bytes]] = {}  # → (partition, key bytes)
        self._counts: dict[str, int] = {}
        # records with a delivery callback not yet called, and the flush waiting for zero
        self._pending = 0
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # buffering -------------------------------------------------------------------------------
    def add(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        """Buffered until `flush` on `partition`; `take_offsets` tells how far these reached."""
        self._buffer.setdefault((topic, partition), []).append((key, value))

    def add_keyed(self, topic: str, key: str, value: bytes, headers: Headers | None = None) -> None:
        """Buffered until `flush`, which puts it on the partition of `key` among the topic's
        partitions (learned once from the broker)."""
        self._keyed.setdefault((topic, key), []).append((value, headers))

    def produce(
        self,
        topic: str,
        value: bytes | None,
        *,
        partition: int | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
    ) -> None:
        """Enqueue one record now, with its own delivery report (the next `flush` awaits it)."""
        self._produce((topic, partition, key, value, headers), tracked=False)

    def discard(self) -> None:
        """Drop what was buffered and not produced yet (e.g. by a batch that failed)."""
        self._keyed.clear()
        self._buffer.clear()

    def take_offsets(self) -> Mapping[TP, int]:
        """Highest acknowledged offset per partition of the `add`ed records since the last
        call (e.g. how far a changelog holds a state store's writes)."""
        with self._lock:
            offsets, self._offsets = self._offsets, {}
        return offsets

    # producing -------------------------------------------------------------------------------
    def _produce(
        self, record: Record, *, tracked: bool, before: list[Record] | None = None
    ) -> None:
        """Enqueue `record` with a delivery callback. `before`: records of the same partition
        enqueued just ahead of it without a callback (the idempotent producer acknowledges a
        partition in order, so their fate is this record's); refused, they all go again.
        `tracked`: its acknowledged offset counts for `take_offsets`."""
        topic = record[0]

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            with self._lock:
                if err is not None:
                    self._failures.extend(_Failure(r, err.str(), tracked) for r in (before or ()))
                    self._failures.append(_Failure(record, err.str(), tracked))
                elif tracked:
                    tp = (topic, int(msg.partition() or 0))
                    offset = int(msg.offset() or 0)
                    if offset > self._offsets.get(tp, -1):
                        self._offsets[tp] = offset
                self._pending -= 1
                if self._pending == 0 and self._waiter is not None:
                    loop, waiting = self._waiter
                    self._waiter = None
                    loop.call_soon_threadsafe(_wake, waiting)

        for earlier in before or ():
            self._enqueue(earlier, None)
        with self._lock:
            self._pending += 1
        self._enqueue(record, on_delivery)

    def _enqueue(self, record: Record, on_delivery: OnDelivery | None) -> None:
        topic, partition, key, value, headers = record
        raw = self._producer.raw
        while True:
            try:
                raw.produce(
                    topic,
                    value=value,
                    key=key,
                    partition=-1 if partition is None else partition,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                raw.poll(0.05)  # local queue full: serve delivery reports, then retry

    async def _partition_counts(self, topics: set[str]) -> None:
        """Learn the partition count of each topic (once; retried while Kafka does not
        answer, like any flush: the caller waits, nothing is dropped)."""
        delay = 0.2
        for topic in topics - self._counts.keys():
            while topic not in self._counts:
                try:
                    meta = await asyncio.to_thread(
                        self._producer.raw.list_topics, topic, self.metadata_timeout
                    )
                    found = meta.topics.get(topic)
                    if found is not None and found.error is None and found.partitions:
                        self._counts[topic] = len(found.partitions)
                        continue
                    log.error("no partition metadata for %s (%s); retrying", topic, found)
                except Exception as exc:
                    log.error("no partition metadata for %s (%s); retrying", topic, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _partition(self, topic: str, key: str) -> tuple[int, bytes]:
        found = self._placed.get((topic, key))
        if found is None:
            raw = key.encode()
            found = self._placed[(topic, key)] = (partition_of_key(raw, self._counts[topic]), raw)
        return found

    def _produce_buffered(self) -> None:
        keyed, self._keyed = self._keyed, {}
        placed: dict[TP, list[Record]] = {}
        for (topic, key), values in keyed.items():
            partition, raw = self._partition(topic, key)
            placed.setdefault((topic, partition), []).extend(
                (topic, partition, raw, v, h) for v, h in values
            )
        buffer, self._buffer = self._buffer, {}
        for (topic, partition), records in buffer.items():
            batch: list[Record] = [(topic, partition, k, v, None) for k, v in records]
            self._produce(batch[-1], tracked=True, before=batch[:-1])
        for batch in placed.values():
            self._produce(batch[-1], tracked=False, before=batch[:-1])

    async def flush(self) -> None:
        """Wait until everything enqueued so far is acknowledged; re-produce refused records."""
        loop = asyncio.get_running_loop()
        if self._keyed:
            await self._partition_counts({topic for topic, _ in self._keyed})
        self._produce_buffered()
        delay = 0.2
        while True:
            with self._lock:
                left = self._pending
                waiting: asyncio.Future[None] | None = None
                if left:
                    waiting = loop.create_future()
                    self._waiter = (loop, waiting)
            if waiting is not None:
                try:
                    await asyncio.wait_for(waiting, FLUSH_WARN_SECONDS)
                except TimeoutError:
                    with self._lock:
                        self._waiter, left = None, self._pending
                    log.error(
                        "%d records still unacknowledged after %.0f s; waiting",
                        left,
                        FLUSH_WARN_SECONDS,
                    )
                    continue
            with self._lock:
                failures, self._failures = self._failures, []
            if not failures:
                return
            for failure in failures:
                log.error("kafka refused a record on %s: %s", failure.record[0], failure.error)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
            for failure in failures:
                self._produce(failure.record, tracked=failure.tracked)
