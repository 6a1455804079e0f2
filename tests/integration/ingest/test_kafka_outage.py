"""Kafka crashes (SIGKILL) in the middle of a burst of signed webhooks: every request gets
either a 2xx or a 503 with Retry-After, and every 2xx is in Kafka once the broker is back.

Runs against its OWN disposable broker (other ports, temp data): the shared :9092 is never
touched."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import envelope, signed_headers
from schemas.events import OrderEvent
from services.common.kafka.admin import ensure_topics
from services.common.topics import Topics
from tests.integration.ingest.conftest import ProvisionFn, StartIngest, read_topic
from tests.support.disposable_kafka import DisposableKafka

pytestmark = pytest.mark.integration


async def test_kafka_crash_during_a_burst_every_2xx_is_in_kafka(
    topic_prefix: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
    disposable_kafka: DisposableKafka,
) -> None:
    names = Topics(topic_prefix)
    ensure_topics(disposable_kafka.bootstrap, partitions=4, names=[names.order_events])
    company = simulator.world.companies[0]
    await provision(company)
    base = await start_ingest(
        shopmonkey_api_base_url=simulator.api_base,
        kafka_bootstrap_servers=disposable_kafka.bootstrap,
        kafka_publish_timeout_seconds=1.0,
    )
    url = f"{base}/webhooks/shopmonkey/{company.tenant_id}/order"
    answers: list[tuple[str, int, dict[str, Any], str | None]] = []

    async def deliver(http: aiohttp.ClientSession) -> int:
        order = simulator.world.create_order(company)
        body = json.dumps(envelope("order", "INSERT", order)).encode()
        async with http.post(url, data=body, headers=signed_headers(company, body)) as resp:
            answer = await resp.json()
            event_id = f"shopmonkey:order:{order['id']}:1"
            answers.append((event_id, resp.status, answer, resp.headers.get("Retry-After")))
            return resp.status

    async def burst(http: aiohttp.ClientSession, count: int, gap: float) -> None:
        tasks = []
        for _ in range(count):
            tasks.append(asyncio.create_task(deliver(http)))
            await asyncio.sleep(gap)
        await asyncio.gather(*tasks)

    async def until_accepted(http: aiohttp.ClientSession) -> None:
        for _ in range(120):
            if await deliver(http) == 200:
                return
            await asyncio.sleep(0.5)
        pytest.fail("ingest never got Kafka's acknowledgement")

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        await until_accepted(http)  # the producer has its connection and producer id
        # A steady stream of webhooks; the broker is killed a third of the way through.
        stream = asyncio.create_task(burst(http, 150, 0.01))
        await asyncio.sleep(0.5)
        await asyncio.to_thread(disposable_kafka.kill)
        await stream
        async with http.get(f"{base}/readyz") as resp:
            assert resp.status == 503  # readiness tells the load balancer too
        assert await deliver(http) == 503
        await asyncio.to_thread(disposable_kafka.start)
        await until_accepted(http)  # Shopmonkey-style retries until the producer reconnected
        await burst(http, 30, 0.005)

    statuses = [status for _, status, _, _ in answers]
    assert set(statuses) <= {200, 503}, statuses
    assert statuses.count(503) >= 1 and statuses.count(200) >= 30 + 2
    assert all(retry for _, status, _, retry in answers if status == 503)
    accepted = {event_id for event_id, status, _, _ in answers if status == 200}
    assert all(a["eventId"] == e for e, s, a, _ in answers if s == 200)
    stored = {
        OrderEvent.from_bytes(r.value).event_id
        for r in read_topic(disposable_kafka.bootstrap, names.order_events, timeout=30)
    }
    assert accepted <= stored, f"{len(accepted - stored)} acknowledged webhooks are not in Kafka"
