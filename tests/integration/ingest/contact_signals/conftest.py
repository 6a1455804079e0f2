"""Fixtures of the signal integration tests: the real ingest app (create_app) on real Kafka and
PostgreSQL with provider keys configured, rows of the read model, and reading a topic back."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from sqlalchemy import insert, text

from schemas.events import ContactSignal
from services.common.db.models import JobExecution, Lead
from services.common.settings import load_settings
from services.ingest.entrypoints.http import create_app
from services.ingest.settings import IngestSettings
from tests.support.phones import random_phone as random_phone
from tests.support.provider_signing import SendGridSigner

TWILIO_TOKEN = "integration-twilio-token"
PUBLIC_URL = "https://hooks.example.test/ingest"


def _end(consumer: Consumer, topic: str, partition: int, timeout: float) -> int:
    """High watermark; a fresh topic may not have its leaders yet, so retry briefly."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return int(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=5)[1]
            )
        except KafkaException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def read_signals(
    bootstrap: str, topic: str, *, timeout: float = 15.0
) -> list[tuple[str, ContactSignal]]:
    """(key, signal) of everything in `topic` now, every partition from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"signals-test-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=timeout)
        partitions = sorted(meta.topics[topic].partitions)
        ends = {p: _end(consumer, topic, p, timeout) for p in partitions}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[tuple[str, ContactSignal]] = []
        pending = {p for p, end in ends.items() if end > 0}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            key = (msg.key() or b"").decode()
            out.append((key, ContactSignal.from_bytes(msg.value() or b"")))
            if (msg.offset() or 0) + 1 >= ends[int(msg.partition() or 0)]:
                pending.discard(int(msg.partition() or 0))
        assert not pending, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


@dataclass
class Stack:
    client: TestClient[web.Request, web.Application]
    settings: IngestSettings
    signer: SendGridSigner
    engine: Any
    bootstrap: str

    def signals(self) -> list[tuple[str, ContactSignal]]:
        return read_signals(self.bootstrap, self.settings.topics.contact_signals)

    async def scalar(self, sql: str, **params: object) -> Any:
        async with self.engine.begin() as conn:  # commits writes (INSERT … RETURNING)
            return (await conn.execute(text(sql), params)).scalar()

    async def add_lead(self, tenant_id: uuid.UUID, **values: object) -> uuid.UUID:
        lead_id = uuid.uuid4()
        now = datetime.now(UTC)
        row: dict[str, object] = {
            "lead_id": lead_id,
            "tenant_id": tenant_id,
            "state": "contacted",
            "source": "webhook",
            "version": 3,
            "created_at": now,
            "updated_at": now,
            **values,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(Lead).values(**row))
        return lead_id

    async def add_touch(
        self, tenant_id: uuid.UUID, lead_id: uuid.UUID, **values: object
    ) -> uuid.UUID:
        command_id = uuid.uuid4()
        row: dict[str, object] = {
            "command_id": command_id,
            "tenant_id": tenant_id,
            "lead_id": lead_id,
            "step_index": 0,
            "channel": "email",
            "template": "estimate_checkin",
            "status": "sent",
            "reason": "sent",
            "provider": "sendgrid",
            "decided_at": datetime.now(UTC),
            **values,
        }
        async with self.engine.begin() as conn:
            await conn.execute(insert(JobExecution).values(**row))
        return command_id


@pytest.fixture
async def stack(
    service_env: dict[str, str],
    kafka_bootstrap: str,
    topics: object,
    db_engine: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Stack]:
    signer = SendGridSigner.generate()
    monkeypatch.setenv("SENDGRID_WEBHOOK_PUBLIC_KEY", signer.public_key)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TWILIO_TOKEN)
    monkeypatch.setenv("TWILIO_WEBHOOK_PUBLIC_URL", PUBLIC_URL)
    monkeypatch.setenv("SHOPMONKEY_API_BASE_URL", "http://127.0.0.1:9/v3")
    settings = load_settings(IngestSettings)
    async with TestClient(TestServer(create_app(settings))) as client:
        yield Stack(client, settings, signer, db_engine, kafka_bootstrap)
