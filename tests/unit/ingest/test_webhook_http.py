"""The webhook and website endpoints end to end through aiohttp, with fake ports: what a
sender sees (status, JSON reason, Retry-After) and what reaches the publisher."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fakes.shopmonkey.webhooks import envelope, legacy_signature
from schemas.base import lead_id_for_order
from services.ingest.entrypoints.admin import create_admin_app
from services.ingest.entrypoints.http import create_app
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import FakeConsents, company_of, delivery, unavailable
from tests.unit.ingest.support_http import WEBSITE_KEY, Harness, metrics_text


@pytest.fixture
async def harness() -> Harness:
    return Harness()


@pytest.fixture
async def client(harness: Harness) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(harness.settings, ingest=harness.ingest))) as c:
        yield c


def url(h: Harness) -> str:
    return f"/webhooks/shopmonkey/{h.company.tenant_id}/order"


async def test_signed_order_is_produced_and_answered_with_its_lead(
    client: TestClient, harness: Harness
) -> None:
    doc = harness.order_doc()
    headers, body = delivery(harness.company, doc)
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    lead = lead_id_for_order(LEAD_IDS, harness.company.tenant_id, doc["data"]["id"])
    assert answer == {
        "success": True,
        "leadId": str(lead),
        "eventId": f"shopmonkey:order:{doc['data']['id']}:1",
    }
    [event] = harness.publisher.events
    customer = harness.company.customers[doc["data"]["customerId"]]
    assert event.customer.email == customer["emails"][0]["email"]  # fetched: the order has none
    assert event.customer.phone == customer["phoneNumbers"][0]["number"]
    assert harness.customers.calls == [(harness.company.company_id, customer["id"], False)]


async def test_the_seed_endpoint_uses_tenant_id(client: TestClient, harness: Harness) -> None:
    headers, body = delivery(harness.company, harness.order_doc())
    resp = await client.post("/webhooks/shopmonkey/order", data=body, headers=headers)
    assert resp.status == 200 and len(harness.publisher.events) == 1


async def test_same_delivery_n_times_gives_the_same_lead_and_one_record(
    client: TestClient, harness: Harness
) -> None:
    doc = harness.order_doc()
    answers = []
    for attempt in range(1, 5):  # retries are re-signed (new timestamp), same webhook-id
        headers, body = delivery(harness.company, doc, msg_id="msg_same", attempt=attempt)
        resp = await client.post(url(harness), data=body, headers=headers)
        answers.append(await resp.json())
    assert len({a["leadId"] for a in answers}) == 1
    assert len(harness.publisher.events) == 1


async def test_concurrent_copies_of_one_delivery_produce_one_record(
    client: TestClient, harness: Harness
) -> None:
    harness.publisher.delay = 0.05  # a slow acknowledgement: the retry races the first attempt
    headers, body = delivery(harness.company, harness.order_doc())
    responses = await asyncio.gather(
        *(client.post(url(harness), data=body, headers=headers) for _ in range(5))
    )
    answers = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 5
    assert len({a["leadId"] for a in answers}) == 1
    assert len(harness.publisher.events) == 1


async def test_a_failed_first_attempt_lets_the_concurrent_retry_produce(
    client: TestClient, harness: Harness
) -> None:
    harness.publisher.delay = 0.05
    harness.publisher.fail_next = 1
    headers, body = delivery(harness.company, harness.order_doc())
    first, second = await asyncio.gather(
        client.post(url(harness), data=body, headers=headers),
        client.post(url(harness), data=body, headers=headers),
    )
    assert sorted([first.status, second.status]) == [200, 503]
    assert len(harness.publisher.events) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h, b: {**h, "webhook-signature": "v1,AAAA"}, "signature mismatch"),
        (lambda h, b: {k: v for k, v in h.items() if k != "webhook-signature"}, "missing"),
        (lambda h, b: {**h, "webhook-timestamp": str(int(time.time()) - 600)}, "too old"),
        (lambda h, b: {**h, "webhook-timestamp": "\u00b2"}, "invalid webhook-timestamp"),
        (lambda h, b: {**h, "webhook-timestamp": "\u0661\u0662"}, "invalid webhook-timestamp"),
        (lambda h, b: {**h, "webhook-timestamp": "-5"}, "invalid webhook-timestamp"),
        (lambda h, b: {**h, "webhook-timestamp": "1.5e9"}, "invalid webhook-timestamp"),
        (lambda h, b: {**h, "webhook-timestamp": "9" * 5000}, "invalid webhook-timestamp"),
        (lambda h, b: {**h, "webhook-id": "x" * 5000}, "invalid webhook-id"),
        (lambda h, b: {**h, "webhook-id": "caf\u00e9"}, "invalid webhook-id"),
        (lambda h, b: {**h, "webhook-signature": "v1,A " * 1000}, "too long"),
    ],
)
async def test_forged_or_stale_webhooks_get_one_generic_401_and_nothing_is_produced(
    client: TestClient,
    harness: Harness,
    caplog: pytest.LogCaptureFixture,
    mutate,
    reason: str,  # type: ignore[no-untyped-def]
) -> None:
    headers, body = delivery(harness.company, harness.order_doc())
    with caplog.at_level("INFO"):
        resp = await client.post(url(harness), data=body, headers=mutate(headers, body))
    assert resp.status == 401
    assert await resp.json() == {"success": False, "reason": "missing or invalid credentials"}
    assert harness.publisher.events == [] and harness.customers.calls == []
    # what failed is for the log, at info (an outsider's mistake pages nobody)
    [line] = [r for r in caplog.records if "unauthorized" in r.getMessage()]
    assert reason in line.getMessage() and line.levelname == "INFO"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


async def test_tampered_body_is_refused(client: TestClient, harness: Harness) -> None:
    doc = harness.order_doc()
    headers, body = delivery(harness.company, doc)
    resp = await client.post(
        url(harness), data=body.replace(b"Estimate", b"Invoice"), headers=headers
    )
    assert resp.status == 401 and harness.publisher.events == []


async def test_another_tenants_secret_does_not_open_this_tenant(
    client: TestClient, harness: Harness
) -> None:
    other = harness.world.companies[1]  # a real company, signing correctly for itself
    harness.tenants.add(company_of(other))
    headers, body = delivery(other, harness.order_doc())
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 401 and harness.publisher.events == []


async def test_legacy_tenant_with_x_shopmonkey_signature(
    client: TestClient, harness: Harness
) -> None:
    doc = envelope("order", "INSERT", harness.world.create_order(harness.legacy))
    body = json.dumps(doc).encode()
    path = f"/webhooks/shopmonkey/{harness.legacy.tenant_id}/order"
    headers = {"Content-Type": "application/json"}
    bad = await client.post(path, data=body, headers={**headers, "X-Shopmonkey-Signature": "00"})
    assert bad.status == 401
    sig = legacy_signature(harness.legacy.webhook_secret, body)
    ok = await client.post(path, data=body, headers={**headers, "X-Shopmonkey-Signature": sig})
    assert ok.status == 200
    [event] = harness.publisher.events
    assert event.tenant_id == harness.legacy.tenant_id
    assert harness.customers.calls == []  # no API key for that tenant: nothing to fetch with


async def test_unknown_tenant_is_404_before_anything_else(
    client: TestClient, harness: Harness
) -> None:
    headers, body = delivery(harness.company, harness.order_doc())
    for tenant in (uuid.uuid4(), "not-a-uuid"):
        resp = await client.post(f"/webhooks/shopmonkey/{tenant}/order", data=body, headers=headers)
        assert resp.status == 404 and (await resp.json())["success"] is False
    assert harness.publisher.events == []


async def test_other_tables_are_acknowledged_and_ignored(
    client: TestClient, harness: Harness
) -> None:
    doc = {"apiVersion": 3, "operation": "INSERT", "table": "vehicle", "data": {"id": "v1"}}
    headers, body = delivery(harness.company, doc)
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 202
    assert await resp.json() == {"success": True, "ignored": "table 'vehicle' is not ingested"}
    assert harness.publisher.events == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "reason"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (
            b'{"apiVersion":"3","operation":"INSERT","table":"order"}',
            "application/json",
            400,
            "data",
        ),
        (
            b'{"apiVersion":"3","operation":"INSERT","table":"order","data":{}}',
            "application/json",
            400,
            "data.id",
        ),
        (b"\xff\xfe", "application/json", 400, "not valid JSON"),
        (b'{"a":1}', "text/plain", 415, "application/json"),
    ],
)
async def test_bad_input_is_4xx_with_a_reason_and_nothing_produced(
    client: TestClient, harness: Harness, body: bytes, content_type: str, status: int, reason: str
) -> None:
    # Sign this exact body: the request is authentic, only its content is wrong.
    headers, _ = _resign(harness, body)
    headers["content-type"] = content_type
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == status
    assert reason in (await resp.json())["reason"]
    assert harness.publisher.events == []


def _resign(harness: Harness, body: bytes) -> tuple[dict[str, str], bytes]:
    from fakes.shopmonkey.webhooks import signed_headers

    return {k.lower(): v for k, v in signed_headers(harness.company, body).items()}, body


async def test_body_over_the_limit_is_413(client: TestClient, harness: Harness) -> None:
    doc = harness.order_doc()
    doc["data"]["complaint"] = "x" * (70 * 1024)
    headers, body = delivery(harness.company, doc)
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 413 and "bytes" in (await resp.json())["reason"]
    assert harness.publisher.events == []


async def test_chunked_bodies_are_read_whole_and_limited_too(
    client: TestClient, harness: Harness
) -> None:
    """Without a Content-Length the body streams in; it is read whole, then limited."""

    def chunks(body: bytes) -> AsyncIterator[bytes]:
        async def gen() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 1000):
                yield body[start : start + 1000]
                await asyncio.sleep(0)

        return gen()

    headers, body = delivery(harness.company, harness.order_doc())
    resp = await client.post(url(harness), data=chunks(body), headers=headers)
    assert resp.status == 200, await resp.text()
    assert len(harness.publisher.events) == 1
    doc = harness.order_doc()
    doc["data"]["complaint"] = "x" * (70 * 1024)
    headers, body = delivery(harness.company, doc)
    resp = await client.post(url(harness), data=chunks(body), headers=headers)
    assert resp.status == 413
    assert len(harness.publisher.events) == 1


async def test_kafka_not_acknowledging_is_503_with_retry_after_then_success(
    client: TestClient, harness: Harness
) -> None:
    doc = harness.order_doc()
    harness.publisher.fail_next = 1
    headers, body = delivery(harness.company, doc)
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 503 and resp.headers["Retry-After"] == "5"
    assert (await resp.json())["success"] is False
    headers, body = delivery(harness.company, doc, attempt=2)
    retry = await client.post(url(harness), data=body, headers=headers)
    assert retry.status == 200 and len(harness.publisher.events) == 1


async def test_shopmonkey_down_for_the_customer_lookup_is_503(
    client: TestClient, harness: Harness
) -> None:
    harness.customers.fail = unavailable()
    headers, body = delivery(harness.company, harness.order_doc())
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 503 and "Retry-After" in resp.headers
    assert harness.publisher.events == []


async def test_customer_change_is_re_read_fresh(client: TestClient, harness: Harness) -> None:
    order = harness.world.create_order(harness.company)
    cid = order["customerId"]
    record, diff = harness.world.update_customer(harness.company, cid, {"email": "new@example.org"})
    data = {k: v for k, v in record.items() if k not in ("emails", "phoneNumbers")}
    headers, body = delivery(harness.company, envelope("customer", "UPDATE", data, diff))
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 200 and (await resp.json())["leadId"] is None
    [event] = harness.publisher.events
    assert event.entity == "customer" and event.customer.email == "new@example.org"
    assert harness.customers.calls == [(harness.company.company_id, cid, True)]


async def test_demo_mode_drops_customers_outside_the_whitelist() -> None:
    h = Harness(demo_mode=True, whitelist=frozenset({"sam@example.com"}))
    async with TestClient(TestServer(create_app(h.settings, ingest=h.ingest))) as client:
        kept = dropped = 0
        for _ in range(12):
            doc = h.order_doc()
            headers, body = delivery(h.company, doc)
            resp = await client.post(url(h), data=body, headers=headers)
            answer = await resp.json()
            email = h.company.customers[doc["data"]["customerId"]]["emails"][0]["email"]
            if email == "sam@example.com":
                assert resp.status == 200
                kept += 1
            else:
                assert resp.status == 202 and answer["ignored"].startswith("demo_mode")
                dropped += 1
        assert kept and dropped  # the seeded world has both kinds
        assert len(h.publisher.events) == kept
        assert {e.customer.email for e in h.publisher.events} == {"sam@example.com"}


async def test_demo_mode_keeps_the_consent_of_the_orders_it_drops() -> None:
    """Demo mode drops the event of a customer outside the whitelist, not the consent their
    record carries: every order's embedded customer is committed, dropped or not."""
    consents = FakeConsents()
    h = Harness(demo_mode=True, whitelist=frozenset({"sam@example.com"}), consents=consents)
    async with TestClient(TestServer(create_app(h.settings, ingest=h.ingest))) as client:
        answers = []
        for _ in range(12):
            doc = h.order_doc()
            doc["data"]["customer"] = h.company.customers[doc["data"]["customerId"]]
            headers, body = delivery(h.company, doc)
            resp = await client.post(url(h), data=body, headers=headers)
            answers.append(resp.status)
    assert 200 in answers and 202 in answers  # the seeded world has both kinds
    assert len(consents.calls) == 12
    emails = [c.contact for _, records in consents.calls for c in records if "@" in c.contact]
    assert "sam@example.com" in emails and len(set(emails)) > 1


async def test_website_lead_with_the_tenant_key(client: TestClient, harness: Harness) -> None:
    form = {
        "submission_id": "form-1",
        "name": "Sam Lee",
        "email": "sam@example.com",
        "phone": "2025550123",
        "vehicle": "2020 Mazda 3",
        "service_of_interest": "Tint",
    }
    auth = {"Authorization": f"Bearer {WEBSITE_KEY}"}
    first = await client.post("/api/leads", json=form, headers=auth)
    second = await client.post("/api/leads", json=form, headers=auth)
    assert first.status == second.status == 200
    assert (await first.json())["leadId"] == (await second.json())["leadId"]
    [event] = harness.publisher.events
    assert event.source.value == "website" and event.tenant_id == harness.company.tenant_id
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": WEBSITE_KEY}):
        resp = await client.post("/api/leads", json=form, headers=headers)
        assert resp.status == 401
    bad = await client.post("/api/leads", json={"name": "x"}, headers=auth)
    assert bad.status == 400 and "submission_id" in (await bad.json())["reason"]


async def test_an_unexpected_error_is_500_counted_and_logged_and_the_next_request_works(
    client: TestClient, harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(event: object) -> None:
        raise RuntimeError("bug in a publisher")

    working = harness.publisher.publish
    harness.publisher.publish = broken  # type: ignore[method-assign]
    headers, body = delivery(harness.company, harness.order_doc())
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 500
    assert await resp.json() == {"success": False, "reason": "internal error"}
    [record] = [r for r in caplog.records if r.message == "unexpected error while ingesting"]
    assert record.exc_info is not None and "bug in a publisher" in str(record.exc_info[1])
    metrics = metrics_text()
    assert 'ingest_webhook_requests_total{outcome="error"}' in metrics
    assert 'ingest_webhook_processing_seconds_count{result="500"}' in metrics

    harness.publisher.publish = working  # type: ignore[method-assign]
    headers, body = delivery(harness.company, harness.order_doc())
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 200 and len(harness.publisher.events) == 1


async def test_health_ready_and_metrics_on_their_listeners(
    client: TestClient, harness: Harness
) -> None:
    """Health on the public listener; metrics and the dashboard only on the admin one."""
    headers, body = delivery(harness.company, harness.order_doc())
    await client.post(url(harness), data=body, headers=headers)
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["checks"] == {
        "kafka": True,
        "postgres": True,
    }
    for path in ("/metrics", "/dashboard", "/dashboard/", "/dashboard/api/summary"):
        assert (await client.get(path, allow_redirects=False)).status == 404, path
    admin = create_admin_app(harness.settings, lambda: harness.ingest)
    async with TestClient(TestServer(admin)) as admin_client:
        metrics = await (await admin_client.get("/metrics")).text()
        assert (await admin_client.get("/healthz")).status == 200
    assert 'ingest_webhook_requests_total{outcome="accepted"}' in metrics
    assert "ingest_webhook_processing_seconds_bucket" in metrics
