"""Webhooks and website leads through the real app, real Kafka, the test database and the
Shopmonkey simulator (for the customer look-up) on real HTTP."""

from __future__ import annotations

import json
import time
import uuid

import aiohttp
import pytest
from aiokafka.partitioner import DefaultPartitioner

from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import WebhookSender, envelope, signed_headers
from schemas.base import lead_id_for_form, lead_id_for_order
from schemas.events import OrderEvent
from services.common.domain import hops
from services.common.topics import Topics
from tests.conftest import free_port
from tests.integration.ingest.conftest import ProvisionFn, StartIngest, read_topic
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = pytest.mark.integration


def expected_partition(tenant_id: uuid.UUID, partitions: int = 4) -> int:
    every = list(range(partitions))
    return int(DefaultPartitioner()(str(tenant_id).encode(), every, every))


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_signed_webhook_is_exactly_one_record_on_the_tenants_partition(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    company = simulator.world.companies[0]
    await provision(company)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    order = simulator.world.create_order(company)
    body = json.dumps(envelope("order", "INSERT", order)).encode()

    before = hops.now_us()
    status, answer = await post(
        f"{base}/webhooks/shopmonkey/{company.tenant_id}/order",
        body,
        signed_headers(company, body),
    )
    after = hops.now_us()

    assert status == 200, answer
    lead_id = lead_id_for_order(LEAD_IDS, company.tenant_id, order["id"])
    assert answer["success"] is True and answer["leadId"] == str(lead_id)
    [record] = read_topic(kafka_bootstrap, topics.order_events)
    assert record.key == str(company.tenant_id)
    assert record.partition == expected_partition(company.tenant_id)
    # when the webhook came, for the latency breakdown of its first message (only that header)
    [(name, at)] = record.headers
    assert name == "hop.webhook_received" and before <= int(at) <= after
    event = OrderEvent.from_bytes(record.value)
    assert event.event_id == f"shopmonkey:order:{order['id']}:1" == answer["eventId"]
    assert event.lead_id == lead_id and event.source.value == "webhook"
    customer = company.customers[order["customerId"]]
    # Looked up over HTTP with the tenant's own key: the order carries no contact details.
    assert event.customer.email == customer["emails"][0]["email"]
    lookups = [r for r in simulator.requests if r["path"].startswith("/v3/customer/")]
    assert [r["tenant_id"] for r in lookups] == [str(company.tenant_id)]


async def test_forged_and_misaddressed_webhooks_produce_nothing(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    company, other = simulator.world.companies
    await provision(company)
    await provision(other)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    url = f"{base}/webhooks/shopmonkey/{company.tenant_id}/order"
    body = json.dumps(envelope("order", "INSERT", simulator.world.create_order(company))).encode()
    good = signed_headers(company, body)
    attempts = {
        "wrong signature": (url, {**good, "webhook-signature": "v1,Zm9yZ2VkIHNpZ25hdHVyZQ=="}),
        "other tenant's secret": (url, signed_headers(other, body)),
        "stale": (url, signed_headers(company, body, timestamp=int(time.time()) - 3600)),
        "no signature": (url, {"Content-Type": "application/json"}),
        "unknown tenant": (f"{base}/webhooks/shopmonkey/{uuid.uuid4()}/order", good),
    }
    for name, (target, headers) in attempts.items():
        status, answer = await post(target, body, headers)
        assert status in (401, 404), name
        assert answer["success"] is False and answer["reason"], name
    assert read_topic(kafka_bootstrap, topics.order_events) == []
    status, _ = await post(url, body, good)
    assert status == 200
    assert len(read_topic(kafka_bootstrap, topics.order_events)) == 1


async def test_simulator_deliveries_and_their_redelivery_give_one_lead(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    company = simulator.world.companies[0]
    await provision(company)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    sender = WebhookSender(base + "/webhooks/shopmonkey/{tenant_id}/order")
    try:
        order = simulator.world.create_order(company)
        doc = envelope("order", "INSERT", order)
        deliveries = [await sender.send(company, doc) for _ in range(3)]
        updated, diff = simulator.world.advance_order(company, order["id"])
        update = await sender.send(company, envelope("order", "UPDATE", updated, diff))
    finally:
        await sender.close()
    assert all(d.delivered and d.attempts == [{"attempt": 1, "status": 200}] for d in deliveries)
    assert len({d.response["leadId"] for d in [*deliveries, update]}) == 1
    events = [
        OrderEvent.from_bytes(r.value) for r in read_topic(kafka_bootstrap, topics.order_events)
    ]
    assert [e.event_id for e in events] == [
        f"shopmonkey:order:{order['id']}:1",
        f"shopmonkey:order:{order['id']}:2",
    ]
    assert events[1].operation.value == "update" and events[1].order.authorized  # type: ignore[union-attr]


async def test_website_lead_with_its_tenant_key(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    company = simulator.world.companies[0]
    tenant, website_key = await provision(company)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    form = {
        "submission_id": f"web-{uuid.uuid4().hex[:8]}",
        "name": "Sam Lee",
        "email": "sam@example.com",
        "phone": "(202) 555-0142",
        "vehicle": "2020 Mazda 3",
        "service_of_interest": "Ceramic coating",
    }
    async with aiohttp.ClientSession() as http:
        answers = []
        for key in (website_key, website_key, "lk_not_a_key"):
            async with http.post(
                f"{base}/api/leads", json=form, headers={"Authorization": f"Bearer {key}"}
            ) as resp:
                answers.append((resp.status, await resp.json()))
    (s1, a1), (s2, a2), (s3, _) = answers
    assert (s1, s2, s3) == (200, 200, 401)
    assert (
        a1["leadId"]
        == a2["leadId"]
        == str(lead_id_for_form(LEAD_IDS, tenant.id, form["submission_id"]))
    )
    [record] = read_topic(kafka_bootstrap, topics.order_events)
    event = OrderEvent.from_bytes(record.value)
    assert event.source.value == "website" and event.entity == "website_form"
    assert event.customer.phone == "+12025550142" and event.service_of_interest == "Ceramic coating"
    assert record.key == str(tenant.id)


async def test_health_readiness_and_metrics(
    topics: Topics, simulator: Simulator, start_ingest: StartIngest
) -> None:
    """Health on the public listener, metrics on the admin listener only."""
    admin_port = free_port()
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base, admin_port=admin_port)
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/healthz") as resp:
            assert resp.status == 200
        async with http.get(f"{base}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["checks"] == {"kafka": True, "postgres": True}
        async with http.get(f"{base}/metrics") as resp:
            assert resp.status == 404
        async with http.get(f"http://127.0.0.1:{admin_port}/metrics") as resp:
            text = await resp.text()
    assert "ingest_webhook_requests_total" in text and "poller_cursor_age_seconds" in text
