"""The poller process's parts (`build_poller`: real Kafka producer, PostgreSQL cursors, the
aiohttp Shopmonkey client) against the Shopmonkey simulator on real HTTP."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fakes.shopmonkey.data import Company
from fakes.shopmonkey.server import Simulator
from schemas.events import OrderEvent
from services.common.settings import load_settings
from services.common.topics import Topics
from services.ingest.adapters.shopmonkey_client import Retries
from services.ingest.bootstrap import build_poller
from services.ingest.settings import IngestSettings
from tests.conftest import ROOT
from tests.integration.ingest.conftest import ProvisionFn, read_topic

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_env")]
FAST_RETRY = Retries(attempts=6, base=0.05, cap=2.0)


def settings_for(sim: Simulator) -> IngestSettings:
    return load_settings(
        IngestSettings,
        shopmonkey_api_base_url=sim.api_base,
        poll_overlap_seconds=60.0,
        poll_initial_lookback_seconds=6 * 3600.0,
    )


async def poll_once(sim: Simulator, tenant_id: uuid.UUID) -> None:
    """One cycle of a freshly started poller process (new client, producer, empty memory)."""
    async with build_poller(settings_for(sim), retry=FAST_RETRY, only=frozenset({tenant_id})) as p:
        [result] = await p.poller.poll_all()
        assert result is not None, "the tenant's poll failed"


def expected_order_events(company: Company) -> set[str]:
    return {f"shopmonkey:order:{o['id']}:{o['meta']['version']}" for o in company.orders.values()}


def order_events(bootstrap: str, topics: Topics) -> list[OrderEvent]:
    events = [OrderEvent.from_bytes(r.value) for r in read_topic(bootstrap, topics.order_events)]
    return [e for e in events if e.entity == "order"]


def seed(company: Company, sim: Simulator, count: int, *, minutes_ago: float) -> None:
    base = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    for i in range(count):
        sim.world.create_order(company, created_at=base + timedelta(seconds=5 * i))


async def test_poller_pages_resumes_after_restart_without_gaps(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    db_engine: AsyncEngine,
) -> None:
    company, other = simulator.world.companies
    await provision(company)
    await provision(other)
    seed(company, simulator, 230, minutes_ago=120)  # three pages of 100
    seed(other, simulator, 7, minutes_ago=60)

    await poll_once(simulator, company.tenant_id)

    first = order_events(kafka_bootstrap, topics)
    assert {e.event_id for e in first} == expected_order_events(company)
    assert len(first) == 230 and {e.tenant_id for e in first} == {company.tenant_id}
    assert all(e.source.value == "poll" and e.customer.email for e in first)
    pages = [r for r in simulator.requests if r["path"] == "/v3/order"]
    assert len(pages) >= 3 and {r["query"]["limit"] for r in pages} == {"100"}
    assert all(r["tenant_id"] == str(company.tenant_id) for r in simulator.requests)
    async with db_engine.connect() as conn:  # type: ignore[attr-defined]
        cursor = (
            await conn.execute(
                text(
                    "SELECT cursor_at FROM company_poll_cursors"
                    " WHERE company_id = :c AND kind = 'poll'"
                ),
                {"c": company.company_id},
            )
        ).scalar_one()
    newest = max(datetime.fromisoformat(o["createdDate"]) for o in company.orders.values())
    assert cursor == newest

    # Changes while the poller is down: new orders and updates of old ones.
    for _ in range(40):
        simulator.world.create_order(company)
    for order_id in list(company.orders)[:25]:
        simulator.world.advance_order(company, order_id)

    await poll_once(simulator, company.tenant_id)  # a restarted process: cursor from PostgreSQL

    after = order_events(kafka_bootstrap, topics)
    ids = [e.event_id for e in after]
    assert set(ids) == expected_order_events(company) | {e.event_id for e in first}  # no gap
    # Re-read after the restart: only the overlap window (60 s), not the 2 h of history.
    assert len(ids) - len(set(ids)) <= 40 + 25
    assert len(after) < 230 + 40 + 25 + 40 + 25


async def test_poller_survives_429s_with_retry_after(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
) -> None:
    company = simulator.world.companies[0]
    await provision(company)
    seed(company, simulator, 120, minutes_ago=30)
    simulator.rate_limits.extend([0.2, 0.2, 0.2, 0.1])  # the next four calls answer 429

    await poll_once(simulator, company.tenant_id)

    statuses = [r["status"] for r in simulator.requests]
    assert statuses[:4] == [429] * 4 and statuses[4:] and set(statuses[4:]) == {200}
    events = order_events(kafka_bootstrap, topics)
    assert {e.event_id for e in events} == expected_order_events(company)


async def test_leadctl_poller_once_as_a_process(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
) -> None:
    company = simulator.world.companies[0]
    await provision(company)
    seed(company, simulator, 12, minutes_ago=10)
    env = {**os.environ, "SHOPMONKEY_API_BASE_URL": simulator.api_base}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "leadctl.main", "poller", "--once", "--tenant", str(company.tenant_id)),
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert "0 failed" in err.decode()
    events = order_events(kafka_bootstrap, topics)
    assert {e.event_id for e in events} == expected_order_events(company)
