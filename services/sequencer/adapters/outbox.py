"""Everything the sequencer writes to Kafka, through one librdkafka producer: commands,
lead changes, dead letters, table changelog records and timer ticks.

Commands, lead changes and changelog records are buffered per partition while a batch is
handled (no per-record future or delivery report); `await flush()` produces them, only the
last record of each partition with a delivery report (the idempotent producer acknowledges a
partition in order), and returns only when everything was acknowledged by the broker
(acks=all, idempotent; keyed records on the partition murmur2 gives their tenant: DESIGN §2).
Agents ack their source records only after that, so a crash never loses an output; a record
the broker refused is produced again until it is accepted (an outage pauses the sequencer, it
never drops).

`flush()` does not call librdkafka's `flush()`: that one polls in 10 ms slices while the
producer's own poll thread serves the same delivery reports, so each flush cost ~10-15 ms
more than the broker's ack. Here the delivery callback that settles the last pending record
wakes the waiting batch directly.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.partitioner import murmur2
from confluent_kafka import KafkaError, Message

from schemas.events import LeadChanged, TouchPointCommand, dlq_topic
from services.common.kafka.dlq import DeadLetter
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]
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


class KafkaOutbox:
    """The production outbox; `FakeOutbox` in tests records the same calls."""

    service = "sequencer"
    #: seconds one partition-metadata request may take before it is retried
    metadata_timeout = 10.0

    def __init__(self, producer: KafkaProducer, topics: Topics) -> None:
        self._producer = producer
        self._topics = topics
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._changelog_offsets: dict[tuple[str, int], int] = {}
        self._changelog_topics: set[str] = set()
        # records buffered until flush, per partition (changelogs, commands, lead changes)
        self._buffer: dict[tuple[str, int], list[tuple[bytes, bytes | None]]] = {}
        self._keyed_buffer: dict[tuple[str, str], list[bytes]] = {}  # (topic, tenant) → values
        self._partitions: dict[tuple[str, str], tuple[int, bytes]] = {}
        self._counts: dict[str, int] = {}
        # records with a delivery callback not yet called, and the flush waiting for zero
        self._pending = 0
        self._waiter: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    # enqueue ---------------------------------------------------------------------------------
    def _produce(self, record: Record, *, before: list[Record] | None = None) -> None:
        """Enqueue `record` with a delivery callback. `before`: records of the same partition
        enqueued just ahead of it without a callback (the idempotent producer acknowledges a
        partition in order, so their fate is this record's); refused, they all go again."""
        topic = record[0]

        def on_delivery(err: KafkaError | None, msg: Message) -> None:
            with self._lock:
                if err is not None:
                    self._failures.extend(_Failure(r, err.str()) for r in (before or ()))
                    self._failures.append(_Failure(record, err.str()))
                elif topic in self._changelog_topics:
                    tp = (topic, int(msg.partition() or 0))
                    offset = int(msg.offset() or 0)
                    if offset > self._changelog_offsets.get(tp, -1):
                        self._changelog_offsets[tp] = offset
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

    def _enqueue(self, record: Record, on_delivery: Any) -> None:
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

    def command(self, command: TouchPointCommand) -> None:
        self._keyed(self._topics.touchpoint_commands, str(command.tenant_id), command.to_bytes())

    def lead_changed(self, change: LeadChanged) -> None:
        self._keyed(self._topics.lead_changes, str(change.tenant_id), change.to_bytes())

    def _keyed(self, topic: str, tenant: str, value: bytes) -> None:
        """Buffered until `flush`, which puts them on the partition the murmur2 partitioner
        gives the tenant key (as librdkafka's `murmur2_random`, aiokafka and Java would): one
        delivery report per partition and batch instead of one per record."""
        self._keyed_buffer.setdefault((topic, tenant), []).append(value)

    async def _partition_counts(self, topics: set[str]) -> None:
        """Learn the partition count of each topic (once; retried while Kafka does not
        answer, like any flush: the batch waits, nothing is dropped)."""
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

    def _partition(self, topic: str, tenant: str) -> tuple[int, bytes]:
        found = self._partitions.get((topic, tenant))
        if found is None:
            key = tenant.encode()
            partition = (murmur2(key) & 0x7FFFFFFF) % self._counts[topic]
            found = self._partitions[(topic, tenant)] = (partition, key)
        return found

    def dead_letter(self, letter: DeadLetter) -> None:
        letter.warn()
        headers = letter.headers(self.service)
        self._produce((dlq_topic(letter.topic), None, letter.key, letter.value, headers))

    def changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        """Buffered until `flush`: only the last record of each changelog partition gets a
        delivery report (its offset is the partition's highest; the idempotent producer
        writes a partition in order), which halves the per-record callback cost."""
        self._changelog_topics.add(topic)
        self._buffer.setdefault((topic, partition), []).append((key, value))

    def _produce_buffered(self) -> None:
        keyed, self._keyed_buffer = self._keyed_buffer, {}
        for (topic, tenant), values in keyed.items():
            partition, key = self._partition(topic, tenant)
            self._buffer.setdefault((topic, partition), []).extend((key, v) for v in values)
        buffer, self._buffer = self._buffer, {}
        for (topic, partition), records in buffer.items():
            batch: list[Record] = [(topic, partition, k, v, None) for k, v in records]
            self._produce(batch[-1], before=batch[:-1])

    def tick(self, topic: str, partition: int, value: bytes) -> None:
        self._produce((topic, partition, None, value, None))

    # flush -------------------------------------------------------------------------------------
    async def flush(self) -> None:
        """Wait until everything enqueued so far is acknowledged; re-produce refused records."""
        loop = asyncio.get_running_loop()
        if self._keyed_buffer:
            await self._partition_counts({topic for topic, _ in self._keyed_buffer})
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
                self._produce(failure.record)

    def discard(self) -> None:
        """Drop what a failed batch buffered and did not produce (its records are read again
        and processed anew; stale outputs must not go out with the next batch)."""
        self._keyed_buffer.clear()
        self._buffer.clear()

    def take_changelog_offsets(self) -> Mapping[tuple[str, int], int]:
        """Highest acknowledged offset per changelog partition since the last call."""
        with self._lock:
            offsets, self._changelog_offsets = self._changelog_offsets, {}
        return offsets
