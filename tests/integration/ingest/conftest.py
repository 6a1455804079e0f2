"""Fixtures of the ingest integration tests: the Shopmonkey simulator in-process, tenants for
its companies in the test database, the real ingest app on a free port, reading a topic back,
and `disposable_kafka`, a throwaway second broker for tests that crash Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from fakes.shopmonkey.data import Company, Location, World
from fakes.shopmonkey.server import Simulator
from services.common.settings import load_settings
from services.ingest.entrypoints.cli import serve
from services.ingest.settings import IngestSettings
from tests.conftest import free_port
from tests.support.disposable_kafka import DisposableKafka


@dataclass(frozen=True)
class Record:
    partition: int
    offset: int
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


TRANSIENT = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
    }
)


def _end_offset(consumer: Consumer, topic: str, partition: int, timeout: float) -> int:
    """The partition's high watermark, retried while a fresh topic's leader is being elected
    (NOT_LEADER_FOR_PARTITION / LEADER_NOT_AVAILABLE are transient)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)[1]
            )
        except KafkaException as exc:
            if exc.args[0].code() not in TRANSIENT or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_topic(bootstrap: str, topic: str, *, timeout: float = 15.0) -> list[Record]:
    """Everything in `topic` right now, every partition from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"ingest-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(meta.topics[topic].partitions)
        ends = {p: _end_offset(consumer, topic, p, timeout) for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Record] = []
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            part, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            key = msg.key()
            headers = tuple(msg.headers() or ())
            records.append(
                Record(part, offset, key.decode() if key else "", msg.value() or b"", headers)
            )
            if offset + 1 >= ends[part]:
                pending.discard(part)
        assert not pending, f"could not read partitions {pending} of {topic} to their end"
        return records
    finally:
        consumer.close()


@pytest.fixture
async def simulator() -> AsyncIterator[Simulator]:
    """The Shopmonkey simulator (2 companies, random seed) on a free loopback port."""
    world = World(seed=random.randrange(1 << 30), tenants=2)
    sim = await Simulator(world).start()
    yield sim
    await sim.stop()


class ProvisionFn(Protocol):
    async def __call__(
        self, company: Company, *, locations: list[Location] | None = None
    ) -> tuple[Any, str]: ...


@pytest.fixture
def provision(make_tenant: Callable[..., Awaitable[tuple[Any, str]]]) -> ProvisionFn:
    """`await provision(company)`: that simulated company (key, secret) and its locations
    (`locations`: only those) as tenants of the test database; returns the first tenant and
    its website key."""

    async def go(company: Company, *, locations: list[Location] | None = None) -> tuple[Any, str]:
        made = [
            await make_tenant(
                tenant_id=location.tenant_id,
                name=location.name,
                company_id=company.company_id,
                location_id=location.location_id,
                api_key=company.api_key,
                webhook_secret=company.webhook_secret,
                signature_scheme=company.signature_scheme,
            )
            for location in (company.locations if locations is None else locations)
        ]
        return made[0]

    return go


StartIngest = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_ingest(service_env: dict[str, str]) -> AsyncIterator[StartIngest]:
    """`await start_ingest(**settings)` runs the real ingest (`leadctl ingest`'s `serve`: the
    public and the admin listener on one set of parts) on free loopback ports (or the
    `webhook_port` / `admin_port` given) and returns the public base URL."""
    running: list[tuple[asyncio.Event, asyncio.Task[None]]] = []

    async def start(**overrides: Any) -> str:
        port = overrides.pop("webhook_port", None) or free_port()
        settings = load_settings(
            IngestSettings,
            **{
                "webhook_host": "127.0.0.1",
                "webhook_port": port,
                "admin_port": free_port(),
                **overrides,
            },
        )
        stop = asyncio.Event()
        task = asyncio.create_task(serve(settings, stop))
        running.append((stop, task))
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 30
            while True:
                if task.done():
                    task.result()  # raises what stopped it
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/healthz") as resp:
                        if resp.status == 200:
                            return base
                assert time.monotonic() < deadline, "ingest did not start"
                await asyncio.sleep(0.05)

    yield start
    for stop, task in reversed(running):
        stop.set()
        await task


@pytest.fixture
def disposable_kafka(tmp_path: Path) -> Iterator[DisposableKafka]:
    """A second, throwaway Kafka broker (own ports, temp data) that a test may crash and
    restart; the shared broker on :9092 is never touched."""
    broker = DisposableKafka(tmp_path / "kafka", port=free_port(), controller_port=free_port())
    broker.start()
    try:
        yield broker
    finally:
        broker.kill()
