"""Helpers for the sequencer's broker tests: real `leadctl sequencer` processes, real Kafka,
the private test database."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.base import lead_id_for_order
from schemas.events import (
    Customer,
    LeadChanged,
    Operation,
    OrderEvent,
    OrderSnapshot,
    OrderSource,
    TouchPointCommand,
)
from services.common.domain.dead_letter import Headers
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics
from tests.conftest import ROOT, free_port
from tests.support.deployment_secrets import LEAD_IDS


def order_event(
    tenant_id: uuid.UUID,
    order_id: str,
    *,
    version: int = 1,
    email: str = "sam@example.com",
    created_at: datetime | None = None,
) -> OrderEvent:
    now = datetime.now(UTC)
    return OrderEvent(
        event_id=f"order:{order_id}:{version}",
        tenant_id=tenant_id,
        lead_id=lead_id_for_order(LEAD_IDS, tenant_id, order_id),
        source=OrderSource.WEBHOOK,
        entity="order",
        operation=Operation.INSERT if version == 1 else Operation.UPDATE,
        occurred_at=now,
        ingested_at=now,
        order=OrderSnapshot(order_id=order_id, number=f"#{order_id[-4:]}", version=version,
                            created_at=created_at or now - timedelta(seconds=1)),
        customer=Customer(customer_id=f"c-{order_id}", first_name="Sam", email=email,
                          phone="+13125550150"),
    )  # fmt: skip


def high_watermarks(bootstrap: str, topics: list[str], partitions: int) -> dict[str, int]:
    """`topic:partition` → its end offset (the form `replay_runs.end_offsets` and
    `records_behind` take)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hw-{uuid.uuid4().hex}"})
    try:
        out = {}
        for t in topics:
            for p in range(partitions):
                out[f"{t}:{p}"] = c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
        return out
    finally:
        c.close()


def produce(bootstrap: str, topic: str, events: list[Any], headers: Headers | None = None) -> None:
    producer = KafkaProducer(bootstrap, client_id="test").start()
    try:
        for e in events:
            producer.send_sync(topic, key=str(e.tenant_id), value=e.to_bytes(), headers=headers)
    finally:
        producer.close()


@dataclass
class Collector:
    """Reads a topic from the beginning with a fresh group."""

    bootstrap: str
    topic: str
    records: list[bytes] = field(default_factory=list)
    placed: list[tuple[str, int]] = field(default_factory=list)  # (key, partition) of each
    headers: list[list[tuple[str, bytes]]] = field(default_factory=list)  # of each record

    def __post_init__(self) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"test-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([self.topic])

    def poll(self, seconds: float = 0.2) -> None:
        for msg in self.consumer.consume(1000, timeout=seconds):
            if msg.error() is None and msg.value() is not None:
                self.records.append(msg.value())
                self.placed.append(((msg.key() or b"").decode(), msg.partition()))
                self.headers.append(list(msg.headers() or []))

    def at_least(self, n: int) -> Callable[[], bool]:
        """A `wait_until` predicate: `n` records read (polling on each call)."""

        def enough() -> bool:
            self.poll()
            return len(self.records) >= n

        return enough

    def commands(self) -> list[TouchPointCommand]:
        return [TouchPointCommand.from_bytes(r) for r in self.records]

    def changes(self) -> list[LeadChanged]:
        return [LeadChanged.from_bytes(r) for r in self.records]

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Worker:
    port: int
    log: Path
    proc: subprocess.Popen[bytes]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=2) as r:
            return str(r.read().decode())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def applied(self, agent: str = "orders") -> float:
        total = 0.0
        for line in self.metrics().splitlines():
            if line.startswith("sequencer_records_total{") and f'topic="{agent}"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, chars: int = 5000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@pytest.fixture
def start_worker(service_env: dict[str, str], tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(name: str = "w", *, data_dir: Path | None = None, **env: str) -> Worker:
        port = free_port()
        log = tmp_path / f"{name}-{len(workers)}.log"
        full = (
            dict(os.environ)
            | {
                "SEQUENCER_PORT": str(port),
                "SEQUENCER_HOST": "127.0.0.1",
                "SEQUENCER_DATA_DIR": str(data_dir or tmp_path / f"data-{name}"),
                "TOUCHPOINT_TICK_SECONDS": "1",
                "REPLAY_POLL_SECONDS": "1",
                "SEQUENCER_SESSION_TIMEOUT_SECONDS": "6",
                "LOG_LEVEL": "info",
            }
            | env
        )
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "leadctl.main", "sequencer"],
                cwd=ROOT,
                env=full,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        worker = Worker(port, log, proc)
        workers.append(worker)
        return worker

    yield start
    for w in workers:
        w.stop()


async def wait_until(predicate: Callable[[], Any], timeout: float, what: str, *logs: Any) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        for w in logs:
            if w.proc.poll() is not None:
                pytest.fail(
                    f"worker exited ({w.proc.returncode}) while waiting for {what}:\n{w.tail()}"
                )
        await asyncio.sleep(0.2)
    tails = "\n".join(w.tail() for w in logs)
    pytest.fail(f"timed out waiting for {what}; logs:\n{tails}")


@pytest.fixture
def commands_of(kafka_bootstrap: str, topics: Topics) -> Iterator[Collector]:
    c = Collector(kafka_bootstrap, topics.touchpoint_commands)
    yield c
    c.close()
