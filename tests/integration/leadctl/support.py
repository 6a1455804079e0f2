"""Shared helpers of the replay integration tests: fill topics with keyed records at chosen
timestamps, and act as the sequencer's consumer group (read + commit)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, Producer, TopicPartition

from services.common.kafka.config import producer_config


def produce(
    bootstrap: str, topic: str, keys: Iterable[str], *, at_ms: int, value: bytes = b"{}"
) -> int:
    producer = Producer(producer_config(bootstrap, client_id="replay-test"))
    n = 0
    for key in keys:
        producer.produce(topic, key=key.encode(), value=value, timestamp=at_ms)
        n += 1
        if n % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(30) == 0
    return n


def consume_all(bootstrap: str, group: str, topics: list[str], expected: int) -> None:
    """Join `group`, read `expected` records from the committed offsets, commit, leave."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    seen = 0
    deadline = time.monotonic() + 60
    while seen < expected and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=1.0):
            if msg.error() is None:
                seen += 1
    assert seen >= expected, f"read {seen} of {expected}"
    consumer.commit(asynchronous=False)
    consumer.close()


def committed(bootstrap: str, group: str, tps: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        got = consumer.committed([TopicPartition(t, p) for t, p in tps], timeout=10)
        return {(tp.topic, tp.partition): tp.offset for tp in got}
    finally:
        consumer.close()


class ActiveMember:
    """A real consumer joined to `group`, polling in a thread until stopped."""

    def __init__(self, bootstrap: str, group: str, topics: list[str]) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                "client.id": "sequencer-stand-in",
            }
        )
        self._consumer.subscribe(topics)
        self._stop = threading.Event()
        self._assigned = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consumer.poll(0.2)
            if self._consumer.assignment():
                self._assigned.set()
        self._consumer.close()

    def __enter__(self) -> ActiveMember:
        self._thread.start()
        assert self._assigned.wait(30), "consumer never got an assignment"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def tenants(n: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(n)]
