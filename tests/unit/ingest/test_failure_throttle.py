"""Callers that keep failing authentication are answered 429 + Retry-After per client address,
before their requests cost anything; memory stays bounded whatever the addresses."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from schemas.base import Channel
from services.common.domain.signed_links import unsubscribe_token
from services.common.logging import MalformedRequestsAtInfo
from services.ingest.domain.failure_throttle import FailureThrottle
from services.ingest.entrypoints.http import create_app
from services.ingest.entrypoints.throttle import THROTTLE
from services.ingest.settings import IngestSettings
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER
from tests.unit.ingest.support import delivery
from tests.unit.ingest.support_http import metrics_text
from tests.unit.ingest.test_webhook_http import WEBSITE_KEY, Harness, url


def test_a_client_has_a_budget_of_failures_refilled_over_time() -> None:
    throttle = FailureThrottle(rate=0.5, burst=3, max_clients=100)
    assert not throttle.active and throttle.retry_after("a", 0.0) is None
    for _ in range(3):
        assert throttle.retry_after("a", 0.0) is None
        throttle.failed("a", 0.0)
    assert throttle.retry_after("a", 0.0) == 2  # one failure back after 2 s at 0.5/s
    assert throttle.retry_after("b", 0.0) is None  # per address
    assert throttle.retry_after("a", 2.0) is None
    assert throttle.retry_after("a", 1000.0) is None and len(throttle) == 0  # forgotten


def test_memory_is_bounded_whatever_the_addresses() -> None:
    throttle = FailureThrottle(rate=1.0, burst=1, max_clients=50)
    for n in range(10_000):
        throttle.failed(f"10.0.{n // 256}.{n % 256}", 0.0)
    assert len(throttle) == 50
    assert throttle.retry_after("10.0.39.15", 0.0) == 1  # the latest are the ones kept


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def throttled() -> AsyncIterator[tuple[Harness, TestClient, Clock]]:
    harness = Harness()
    harness.settings = IngestSettings(
        tenant_id=harness.company.tenant_id,
        auth_failure_burst=3,
        auth_failures_per_minute=6,  # one more every 10 s
    )
    app = create_app(harness.settings, ingest=harness.ingest)
    clock = app[THROTTLE].clock = Clock()
    async with TestClient(TestServer(app)) as client:
        yield harness, client, clock


async def test_repeated_failures_get_429_even_for_a_good_request_then_recover(
    throttled: tuple[Harness, TestClient, Clock],
) -> None:
    harness, client, clock = throttled
    bad = {"webhook-id": "m", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"}
    statuses = [
        (await client.post(url(harness), data=b"{}", headers=bad)).status,
        (await client.post("/api/leads", json={}, headers={"Authorization": "Bearer nope"})).status,
        (await client.get("/api/leads/x", headers={"Authorization": "Bearer nope"})).status,
    ]
    assert statuses == [401, 401, 401]
    # Over budget: even a correctly signed delivery is refused before it is looked at.
    headers, body = delivery(harness.company, harness.order_doc())
    for path, kwargs in (
        (url(harness), {"data": body, "headers": headers}),
        ("/api/leads", {"json": {}, "headers": {"Authorization": f"Bearer {WEBSITE_KEY}"}}),
        ("/webhooks/twilio/status", {"data": {"MessageSid": "SM1"}}),
    ):
        resp = await client.post(path, **kwargs)
        assert resp.status == 429, path
        assert resp.headers["Retry-After"] == "10"
    assert harness.publisher.events == []
    # an unsubscribe link needs no credentials: it stays open to whoever shares the address
    token = unsubscribe_token(
        UNSUBSCRIBE_SIGNER,
        tenant_id=harness.company.tenant_id,
        lead_id=uuid.uuid4(),
        channel=Channel.EMAIL,
        contact="sam@example.com",
    )
    assert (await client.get(f"/u/{token}")).status == 200
    assert (await client.post("/u/not-a-token")).status == 400  # refused, not throttled
    metrics = metrics_text()
    assert 'ingest_webhook_requests_total{outcome="throttled"}' in metrics
    assert 'ingest_signal_requests_total{outcome="throttled",route="twilio_status"}' in metrics
    clock.now += 10  # one failure's worth of budget back
    resp = await client.post(url(harness), data=body, headers=headers)
    assert resp.status == 200 and len(harness.publisher.events) == 1


async def test_unknown_tenants_count_as_failures(
    throttled: tuple[Harness, TestClient, Clock],
) -> None:
    harness, client, _ = throttled
    for n in range(3):
        resp = await client.post(f"/webhooks/shopmonkey/{n:08d}-0000-4000-8000-000000000000/order")
        assert resp.status == 404
    assert (await client.post(url(harness), data=b"{}")).status == 429


async def test_a_proxys_forwarded_address_is_the_client_only_when_trusted() -> None:
    harness = Harness()
    settings = IngestSettings(
        tenant_id=harness.company.tenant_id, auth_failure_burst=1, trusted_proxy_hops=1
    )
    async with TestClient(TestServer(create_app(settings, ingest=harness.ingest))) as client:
        fails = {"Authorization": "Bearer nope", "X-Forwarded-For": "198.51.100.7"}
        assert (await client.post("/api/leads", json={}, headers=fails)).status == 401
        assert (await client.post("/api/leads", json={}, headers=fails)).status == 429
        # the same proxy, another client behind it: not throttled
        other = {"Authorization": "Bearer nope", "X-Forwarded-For": "spoofed, 198.51.100.8"}
        assert (await client.post("/api/leads", json={}, headers=other)).status == 401


def test_requests_aiohttp_cannot_parse_are_logged_at_info_without_a_traceback() -> None:
    from aiohttp.http_exceptions import LineTooLong

    try:
        raise LineTooLong(b"x" * 20, 8190)
    except LineTooLong as exc:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", None, None
        )
        record.exc_info = (type(exc), exc, exc.__traceback__)
    assert MalformedRequestsAtInfo().filter(record)
    assert record.levelname == "INFO" and record.exc_info is None
    assert "LineTooLong 400" in record.getMessage()
