"""Fixtures of the outbound integration tests: fake providers on loopback, the service's
environment, producing commands, collecting outcomes, reading the ledger."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from schemas.base import Channel
from schemas.events import TouchPointCommand, TouchPointOutcome
from services.common.domain.dead_letter import Headers
from services.common.kafka.producer import KafkaProducer
from services.common.settings import load_settings
from services.common.topics import Topics
from services.outbound.bootstrap import Outbound, build
from services.outbound.settings import OutboundSettings
from tests.conftest import free_port
from tests.support.kafka_read import read_topic
from tests.unit.outbound.support import PHONE, FakeProviders, command, fake_providers

WHITELIST = "sam@example.com, qa@example.com"


@pytest.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    async with fake_providers() as p:
        yield p


@pytest.fixture
def outbound_env(
    service_env: dict[str, str], providers: FakeProviders, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    env = service_env | {
        "LEAD_EMAIL_WHITELIST": WHITELIST,
        "CHAT_BASE_URL": "https://chat.example.com",
        "SENDGRID_API_KEY": "SG.integration",
        "SENDGRID_FROM_EMAIL": "noreply@shop.example",
        "SENDGRID_API_BASE_URL": providers.sendgrid_url,
        "SENDGRID_RECONCILE": "activity",
        "SENDGRID_ACTIVITY_SETTLE_SECONDS": "0",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "token",
        "TWILIO_PHONE_NUMBER": "+12025550199",
        # the test phone and those of `whitelisted_batch`; others are listed per test
        "LEAD_PHONE_WHITELIST": ",".join([PHONE, *BATCH_PHONES]),
        "TWILIO_API_BASE_URL": providers.twilio_url,
        "TWILIO_RATE_PER_SECOND": "1000",
        "TWILIO_RATE_BURST": "1000",
        "FREQUENCY_CAP_EMAIL": "1000",
        "FREQUENCY_CAP_SMS": "1000",
        "PROVIDER_TIMEOUT_SECONDS": "1",
        "CLAIM_STALE_SECONDS": "3",
        "SWEEP_INTERVAL_SECONDS": "1",
        "RETRY_BASE_SECONDS": "0.05",
        "RETRY_MAX_SECONDS": "0.5",
        "OUTBOUND_HOST": "127.0.0.1",
        "OUTBOUND_PORT": str(free_port()),
        "OUTBOUND_GROUP_ID": f"outbound-{uuid.uuid4().hex[:8]}",
        "TENANT_CACHE_SECONDS": "0",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def settings_from_env(**overrides: Any) -> OutboundSettings:
    return load_settings(OutboundSettings, **overrides)


@asynccontextmanager
async def running_outbound(**overrides: Any) -> AsyncIterator[Outbound]:
    """The service in this process (same code as `leadctl outbound`), stopped on exit."""
    settings = settings_from_env(**overrides)
    stop = asyncio.Event()
    async with build(settings) as outbound:
        task = asyncio.create_task(outbound.run(stop))
        try:
            yield outbound
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=30)


async def produce(
    bootstrap: str,
    topics: Topics,
    commands: Iterable[TouchPointCommand],
    headers: Headers | None = None,
) -> None:
    producer = KafkaProducer(bootstrap, client_id="outbound-test").start()
    try:
        for cmd in commands:
            topic, key = topics.touchpoint_commands, str(cmd.tenant_id)
            await producer.send(topic, cmd, key=key, headers=headers)
    finally:
        await asyncio.to_thread(producer.close)


async def produce_raw(bootstrap: str, topic: str, key: str, value: bytes) -> None:
    producer = KafkaProducer(bootstrap, client_id="outbound-test").start()
    try:
        await producer.send_raw(topic, key=key, value=value)
    finally:
        await asyncio.to_thread(producer.close)


async def outcome_records(
    bootstrap: str, topics: Topics, want: int, timeout: float = 60.0
) -> list[Any]:
    """The outcome topic's first `want` records (confluent-kafka messages, headers and all)."""
    return await asyncio.to_thread(read_topic, bootstrap, topics.touchpoint_outcomes, want, timeout)


async def outcomes(
    bootstrap: str, topics: Topics, want: int, timeout: float = 60.0
) -> list[TouchPointOutcome]:
    msgs = await outcome_records(bootstrap, topics, want, timeout)
    return [TouchPointOutcome.from_bytes(m.value()) for m in msgs]


async def dead_letters(bootstrap: str, topic: str, want: int) -> list[Any]:
    return await asyncio.to_thread(read_topic, bootstrap, topic, want, 30.0)


async def ledger_rows(db_url: str, command_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT command_id, status FROM job_executions WHERE command_id = ANY(%s)",
            (list(command_ids),),
        )
        return {cid: status for cid, status in await cur.fetchall()}


async def wait_final(db_url: str, command_ids: list[uuid.UUID], timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    rows: dict[uuid.UUID, str] = {}
    while time.monotonic() < deadline:
        rows = await ledger_rows(db_url, command_ids)
        if len(rows) == len(set(command_ids)) and "claimed" not in rows.values():
            return rows
        await asyncio.sleep(0.2)
    pytest.fail(f"ledger not final after {timeout} s: {collections.Counter(rows.values())}")


def send_requests(providers: FakeProviders) -> list[dict[str, Any]]:
    """Every request that asked a provider to create a message (accepted or not).

    Reconciliation lookups (GETs) are left out: the sweeper of a service under test also looks
    up stale claims other tests left in the shared database, which sends nothing.
    """
    return [
        r for r in providers.sendgrid.requests + providers.twilio.requests if r["method"] == "POST"
    ]


def sends_per_command(
    providers: FakeProviders, commands: list[TouchPointCommand]
) -> collections.Counter[uuid.UUID]:
    """How many messages each command made the providers create (accepted requests)."""
    sms_by_lead = {c.lead_id: c.command_id for c in commands if c.channel is Channel.SMS}
    count: collections.Counter[uuid.UUID] = collections.Counter()
    for req in providers.sendgrid.requests:
        if req["accepted"] and req["method"] == "POST":
            count[uuid.UUID(req["payload"]["custom_args"]["command_id"])] += 1
    for req in providers.twilio.requests:
        if req["accepted"] and req["method"] == "POST":
            lead = uuid.UUID(req["payload"]["Body"].split("chat.example.com/")[1][:36])
            count[sms_by_lead[lead]] += 1
    return count


#: The SMS recipients of `whitelisted_batch` (distinct per command up to this many).
BATCH_PHONES = [f"+1312555{i:04d}" for i in range(300)]


@dataclass
class Batch:
    commands: list[TouchPointCommand]

    @property
    def ids(self) -> list[uuid.UUID]:
        return [c.command_id for c in self.commands]


def whitelisted_batch(tenants: list[uuid.UUID], n: int) -> Batch:
    """`n` whitelisted commands, half email half SMS, spread over the tenants."""
    now = datetime.now(UTC) - timedelta(seconds=1)
    out = []
    for i in range(n):
        channel = Channel.EMAIL if i % 2 == 0 else Channel.SMS
        out.append(
            command(
                channel=channel,
                tenant_id=tenants[i % len(tenants)],
                email="sam@example.com" if i % 3 else " QA@Example.com ",
                phone=BATCH_PHONES[i % len(BATCH_PHONES)],
                step=i,
                at=now,
            )
        )
    return Batch(out)
