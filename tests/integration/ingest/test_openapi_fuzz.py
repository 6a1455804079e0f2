"""Schemathesis against the LIVE ingest app (real Kafka, the test database, a free loopback
port): every operation of `/openapi.json`, positive and negative cases, never a 5xx. Headers
are fuzzed too: the documented ones (signatures, timestamps, ids, bearer tokens) as generated,
alone or next to otherwise genuine credentials, so each header's own check is what answers.

Bounded: a few dozen examples per operation, so the whole run stays well under a minute."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from fakes.shopmonkey.webhooks import standard_signature
from services.common.db.companies import new_webhook_secret
from services.common.settings import load_settings
from services.ingest.entrypoints.cli import serve
from services.ingest.settings import IngestSettings
from tests.conftest import free_port

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 60
COMPANY_PATH = "/webhooks/shopmonkey/companies/{company_id}/order"
# a guard against a hang, not a speed target: ~15 s on a quiet machine, 60 s seen under load
BUDGET_SECONDS = 180.0


class LiveApp:
    """The real ingest (`leadctl ingest`'s `serve`: its own producer, DB engine, Shopmonkey
    client; the public listener at `base`, the admin one at `admin`) served by a thread with
    its own event loop, so the synchronous fuzzer can call it over real HTTP."""

    def __init__(self, settings: IngestSettings) -> None:
        self.port, self.admin_port = free_port(), free_port()
        self.settings = settings.model_copy(
            update={
                "webhook_host": "127.0.0.1",
                "webhook_port": self.port,
                "admin_port": self.admin_port,
            }
        )
        self.base = f"http://127.0.0.1:{self.port}"
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="live-ingest", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the test thread
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        serving = asyncio.create_task(serve(self.settings, self._stop))
        while True:  # ready once the public listener answers
            if serving.done():
                await serving  # raises what stopped it (reported by `_run`)
                return
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        self._ready.set()
        await serving

    def __enter__(self) -> LiveApp:
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"ingest app did not start: {self._error!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture
async def default_tenant(make_tenant: Callable[..., Any]) -> tuple[Any, str, str]:
    """(tenant, its website key, its company's webhook secret)."""
    secret = new_webhook_secret()
    tenant, website_key = await make_tenant(webhook_secret=secret)
    return tenant, website_key, secret


@pytest.fixture
def live_ingest(
    topics: object, service_env: dict[str, str], default_tenant: tuple[Any, str, str]
) -> Iterator[str]:
    # TENANT_ID names a real tenant, so the seed endpoint goes past the tenant look-up.
    app_settings = load_settings(
        IngestSettings,
        tenant_id=default_tenant[0].id,
        shopmonkey_api_base_url="http://127.0.0.1:9/v3",
        auth_failure_burst=100_000,  # the fuzzer fails on purpose: never throttle it
    )
    with LiveApp(app_settings) as app:
        yield app.base


SIGNED = ("/webhooks/shopmonkey/order", COMPANY_PATH)


def to_company(kwargs: dict[str, Any], tenant: Any) -> None:
    """The generated request, to the URL of the tenant's company."""
    base = kwargs["url"].split("/webhooks/")[0]
    kwargs["url"] = base + COMPANY_PATH.format(company_id=tenant.shopmonkey_company_id)


def authorized(
    kwargs: dict[str, Any],
    path: str,
    tenant: Any,
    website_key: str,
    secret: str,
    *,
    keep: bool = False,
) -> dict[str, Any]:
    """Sign the seed endpoint's and the company URL's generated body with the company's secret
    (the company URL naming the tenant's company) and give /api/leads its key, so the fuzzer
    reaches the parsers, the routing and Kafka instead of stopping at 401/404. `keep`: a
    generated header value stays in place of the genuine one (one header fuzzed, the others
    genuine)."""
    generated = {k.lower(): v for k, v in (kwargs.get("headers") or {}).items()}
    doc = kwargs.pop("json", None)
    if path in SIGNED and isinstance(doc, dict):
        # Most generated envelopes name a random table (202); steer them to the order path,
        # half of them at the tenant's own location.
        doc["table"] = "order"
        if isinstance(doc.get("data"), dict):
            doc["data"].setdefault("id", f"fuzz-{time.monotonic_ns()}")
            if time.monotonic_ns() % 2:
                doc["data"]["locationId"] = tenant.shopmonkey_location_id
    if path == COMPANY_PATH:
        to_company(kwargs, tenant)
    if doc is not None:
        kwargs["data"] = json.dumps(doc).encode()
    body = kwargs.get("data")
    body = body.encode() if isinstance(body, str) else body
    headers = kwargs.setdefault("headers", {})
    if path in SIGNED and isinstance(body, bytes):
        stamp, msg_id = int(time.time()), f"msg_fuzz_{time.monotonic_ns()}"
        headers["webhook-id"] = msg_id
        headers["webhook-timestamp"] = str(stamp)
        headers["webhook-signature"] = standard_signature(secret, msg_id, stamp, body)
    elif path == "/api/leads":
        headers["Authorization"] = f"Bearer {website_key}"
    if keep:
        for name in list(headers):
            if name.lower() in generated:
                headers[name] = generated[name.lower()]
                break  # one generated header, the others genuine
    return kwargs


def test_no_generated_request_gets_a_server_error(
    live_ingest: str, default_tenant: tuple[Any, str, str]
) -> None:
    tenant, website_key, secret = default_tenant
    schema = schemathesis.openapi.from_url(f"{live_ingest}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        COMPANY_PATH,
        "/webhooks/shopmonkey/{tenant_id}/order",
        "/webhooks/shopmonkey/order",
        "/api/leads",
        "/readyz",
    }
    deadline = time.monotonic() + BUDGET_SECONDS
    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    headers_seen: set[str] = set()
    calls = 0
    for operation in operations:
        if time.monotonic() > deadline:
            pytest.fail(f"fuzzing budget of {BUDGET_SECONDS:.0f}s exhausted at {operation.label}")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            kwargs = case.as_transport_kwargs(base_url=live_ingest)
            headers_seen.update(k.lower() for k in case.headers or {})  # as generated
            if calls % 4:  # three in four authorized (one of them with a generated header)
                kwargs = authorized(
                    kwargs,
                    case.operation.path,
                    tenant,
                    website_key,
                    secret,
                    keep=calls % 4 == 3,
                )
            elif case.operation.path == COMPANY_PATH and calls % 8:  # a real company, unsigned
                to_company(kwargs, tenant)
            try:
                response = requests.request(**kwargs, timeout=10)
            except requests.RequestException as exc:
                failures.append(f"{case.method} {case.formatted_path}: {exc}")
                return
            statuses.setdefault(case.operation.path, set()).add(response.status_code)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} -> {response.status_code}: "
                    f"{response.text[:200]}"
                )

        check()
    assert calls >= len(operations) * 5
    # The fuzzer reached the handlers' checks, not only the router.
    assert 404 in statuses["/webhooks/shopmonkey/{tenant_id}/order"]
    assert {200, 401} <= statuses["/webhooks/shopmonkey/order"]  # 200: in Kafka
    # the company URL: unknown companies, forged signatures, routed and unrouted orders
    assert {200, 202, 401, 404} <= statuses[COMPANY_PATH]
    # headers were generated too (signatures, timestamps, tokens), not only bodies
    assert {"webhook-timestamp", "x-twilio-signature", "authorization"} <= headers_seen
    assert {200, 400, 401} <= statuses["/api/leads"]
    assert not failures, "\n".join(failures[:20])
