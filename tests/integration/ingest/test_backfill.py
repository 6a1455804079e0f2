"""`leadctl backfill` against the Shopmonkey simulator, real Kafka and PostgreSQL: killed
(SIGKILL) halfway and run again, every historical order is in the topic exactly once in
effect (same event ids; no order missing; re-sent at most the page in flight); old orders
plan no touch points; 429s with Retry-After are survived; a finished backfill is a no-op."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Consumer
from sqlalchemy import select

from fakes.shopmonkey.data import World
from fakes.shopmonkey.server import Simulator
from schemas.base import lead_id_for_order
from services.common.db.models import BackfillCursor
from services.common.rate_limiter import RateLimiter
from services.ingest.adapters.shopmonkey_client import ShopmonkeyClient
from services.ingest.entrypoints.backfill import run_backfill
from services.ingest.settings import BackfillSettings
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = pytest.mark.integration

ORDERS = 260
SINCE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=60)


@pytest.fixture
async def sim(service_env, topics, make_tenant, monkeypatch):  # type: ignore[no-untyped-def]
    world = World(seed=uuid.uuid4().int % 10**9, tenants=1)
    company = world.companies[0]
    now = datetime.now(UTC)
    for i in range(ORDERS):  # spread over 90 days: some before SINCE, some older than 30 days
        world.create_order(company, created_at=now - timedelta(days=90) * (i / ORDERS))
    await make_tenant(
        tenant_id=company.tenant_id,
        company_id=company.company_id,
        location_id=company.location_id,
        api_key=company.api_key,
    )
    simulator = await Simulator(world).start()
    monkeypatch.setenv("SHOPMONKEY_API_BASE_URL", simulator.api_base)
    yield simulator
    await simulator.stop()


def _expected(sim: Simulator) -> dict[uuid.UUID, dict[str, object]]:
    company = sim.world.companies[0]
    return {
        lead_id_for_order(LEAD_IDS, company.tenant_id, oid): order
        for oid, order in company.orders.items()
        if datetime.fromisoformat(order["createdDate"].replace("Z", "+00:00")) >= SINCE
    }


def _topic_events(bootstrap: str, topic: str) -> list[dict[str, object]]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"check-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    consumer.subscribe([topic])
    events: list[dict[str, object]] = []
    idle = 0
    while idle < 3:
        msgs = consumer.consume(num_messages=1000, timeout=1.0)
        idle = idle + 1 if not [m for m in msgs if m.error() is None] else 0
        events.extend(json.loads(m.value()) for m in msgs if m.error() is None)
    consumer.close()
    return events


async def _cursor(db_engine, tenant_id: uuid.UUID) -> BackfillCursor | None:  # type: ignore[no-untyped-def]
    async with db_engine.connect() as conn:
        return (
            await conn.execute(select(BackfillCursor).where(BackfillCursor.tenant_id == tenant_id))
        ).one_or_none()


async def test_backfill_killed_halfway_then_rerun_gives_every_order_once(  # type: ignore[no-untyped-def]
    sim, topics, kafka_bootstrap, db_engine, monkeypatch
) -> None:
    company = sim.world.companies[0]
    monkeypatch.setenv("BACKFILL_REQUESTS_PER_MINUTE", "1200")  # ~20 requests/s: a few seconds
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "leadctl.main",
        "backfill",
        "--tenant",
        str(company.tenant_id),
        "--since",
        SINCE.isoformat(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    for _ in range(600):  # kill it once the first page is acknowledged and recorded
        row = await _cursor(db_engine, company.tenant_id)
        if row is not None and row.pages >= 1:
            break
        await asyncio.sleep(0.05)
    else:
        proc.kill()
        out = await proc.communicate()
        pytest.fail(f"backfill never recorded a page: {out[0].decode()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    row = await _cursor(db_engine, company.tenant_id)
    assert row is not None and row.status == "running"
    killed_at = row.orders_produced
    expected = _expected(sim)
    assert 0 < killed_at < len(expected)

    settings = BackfillSettings(backfill_requests_per_minute=0)
    total, this_run, unplanned = await run_backfill(
        settings, company.tenant_id, SINCE, restart=False, echo=False
    )
    assert total == len(expected)
    assert this_run == len(expected) - killed_at

    events = _topic_events(kafka_bootstrap, topics.order_events)
    leads = {uuid.UUID(str(e["lead_id"])) for e in events}
    assert leads == set(expected)  # none missing, none extra (orders before SINCE excluded)
    by_event = Counter(str(e["event_id"]) for e in events)
    assert len(by_event) == len(expected)  # one event id per order: duplicates are harmless
    assert len(events) - len(by_event) <= 100  # at most the page in flight was re-sent
    assert all(e["source"] == "backfill" for e in events)
    old = [e for e in events if not e["plan_touchpoints"]]
    cutoff = datetime.now(UTC) - timedelta(days=30)
    for e in events:
        created = datetime.fromisoformat(str(e["order"]["created_at"]))  # type: ignore[index]
        assert e["plan_touchpoints"] is (created >= cutoff)
    assert old, "some backfilled orders are older than 30 days"
    assert unplanned <= len(old)  # this run's share (oldest pages went before the kill)
    assert all(e["customer"]["email"] for e in events)  # type: ignore[index]

    # a finished backfill is a no-op
    again = await run_backfill(settings, company.tenant_id, SINCE, restart=False, echo=False)
    assert again[1] == 0
    assert len(_topic_events(kafka_bootstrap, topics.order_events)) == len(events)


async def test_backfill_survives_429_with_retry_after(  # type: ignore[no-untyped-def]
    sim, topics, kafka_bootstrap
) -> None:
    company = sim.world.companies[0]
    for _ in range(3):
        sim.rate_limits.append(0.2)
    settings = BackfillSettings(backfill_requests_per_minute=0)
    total, _, _ = await run_backfill(settings, company.tenant_id, SINCE, restart=False, echo=False)
    assert total == len(_expected(sim))
    assert sum(1 for r in sim.requests if r.get("status") == 429) == 3
    events = _topic_events(kafka_bootstrap, topics.order_events)
    assert {uuid.UUID(str(e["lead_id"])) for e in events} == set(_expected(sim))


async def test_throttled_client_spaces_every_shopmonkey_request(sim) -> None:  # type: ignore[no-untyped-def]
    company = sim.world.companies[0]
    limiter = RateLimiter.per_minute(300.0)  # 0.2 s apart
    client = ShopmonkeyClient(sim.api_base, timeout=5, limiter=limiter)
    await client.start()
    try:
        started = time.monotonic()
        for _ in range(3):
            await client.list_records(
                company.api_key, "order", where=None, orderby=None, limit=1, skip=0
            )
        order_id = next(iter(company.orders))
        await client.get_order(company.api_key, order_id)
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert elapsed >= 0.55  # 4 requests: 3 waits of 0.2 s
    assert len(sim.requests) == 4
