"""The dashboard sub-application's HTTP edges: sign-in first (session cookie or operator API
token), a strict CSP, what each operator may see (another location is a 404), only the windows
the page offers, identical concurrent requests sharing one query, 503 when PostgreSQL does not
answer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.db.engine import async_engine
from services.common.kafka.lag import PartitionLag
from services.common.settings import CommonSettings
from services.ingest.adapters.metrics import WEBHOOK_LATENCY_METRIC, WEBHOOK_REQUEST_METRIC
from services.ingest.adapters.webhook_stats_prometheus import RegistryWebhookMeter
from services.ingest.bootstrap import build_dashboard
from services.ingest.domain.dashboard import (
    DeclinedWork,
    LagReport,
    LeadCounts,
    ReadModelCounts,
    TouchCounts,
)
from services.ingest.entrypoints.dashboard import create_dashboard_app
from services.ingest.service_layer.dashboard import WINDOWS, Dashboard
from services.ingest.service_layer.operator_access import OperatorAccess
from tests.conftest import free_port
from tests.unit.ingest.support_operators import FakeOperatorStore, operator_access

Client = TestClient[web.Request, web.Application]
A, B = uuid.uuid4(), uuid.uuid4()
#: each location's declined work as the read model sums it
DECLINED = {
    A: DeclinedWork(services=2, cents=80_000, revived_services=1, revived_cents=20_000),
    B: DeclinedWork(services=5, cents=900_000, revived_services=3, revived_cents=600_000),
}


def no_lag() -> list[PartitionLag]:
    return []


@dataclass
class FakeReads:
    """`DashboardReads` of two locations; records which locations each query asked for."""

    names: dict[uuid.UUID, str] = field(default_factory=lambda: {A: "Austin", B: "Boston"})
    asked: list[frozenset[uuid.UUID] | None] = field(default_factory=list)
    delay: float = 0.0

    async def counts(
        self, *, tenants: frozenset[uuid.UUID] | None, since: datetime, bucket_seconds: int
    ) -> ReadModelCounts:
        self.asked.append(tenants)
        await asyncio.sleep(self.delay)
        shown = [t for t in self.names if tenants is None or t in tenants]
        leads = LeadCounts(
            by_tenant={t: {"new": 1} for t in shown},
            declined_by_tenant={t: DECLINED[t] for t in shown if t in DECLINED},
        )
        return ReadModelCounts(names=dict(self.names), leads=leads, touches=TouchCounts())

    async def tenant_names(self, *, max_age: float) -> dict[uuid.UUID, str]:
        return dict(self.names)


@dataclass
class FakeLag:
    reads: int = 0

    async def report(self) -> LagReport:
        self.reads += 1
        return LagReport()


@dataclass
class Stack:
    client: Client
    store: FakeOperatorStore
    reads: FakeReads
    lag: FakeLag
    access: OperatorAccess


async def _stack(reads: object, *, tls: bool = False) -> AsyncIterator[Stack]:
    store = FakeOperatorStore()
    access = operator_access(store)
    lag = FakeLag()
    if isinstance(reads, FakeReads):
        registry = CollectorRegistry()
        dashboard = Dashboard(
            reads=reads,
            lag=lag,
            webhooks=RegistryWebhookMeter(
                registry,
                request_metric=WEBHOOK_REQUEST_METRIC,
                latency_metric=WEBHOOK_LATENCY_METRIC,
            ),
        )
    else:
        dashboard = reads  # type: ignore[assignment]
    root = web.Application()
    root.add_subapp("/dashboard", create_dashboard_app(lambda: dashboard, lambda: access, tls=tls))
    async with TestClient(TestServer(root)) as c:
        yield Stack(c, store, reads if isinstance(reads, FakeReads) else FakeReads(), lag, access)


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    async for s in _stack(FakeReads()):
        yield s


async def sign_in(client: Client, email: str, password: str = "right password") -> int:
    resp = await client.post(
        "/dashboard/sign-in", data={"email": email, "password": password}, allow_redirects=False
    )
    return resp.status


async def test_the_page_needs_a_session_and_every_answer_has_a_strict_csp(stack: Stack) -> None:
    client = stack.client
    redirect = await client.get("/dashboard", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == "/dashboard/"
    anonymous = await client.get("/dashboard/", allow_redirects=False)
    assert anonymous.status == 303 and anonymous.headers["Location"] == "sign-in"
    form = await client.get("/dashboard/sign-in")
    assert form.status == 200 and 'name="password"' in await form.text()
    assert "form-action 'self'" in form.headers["Content-Security-Policy"]
    summary = await client.get("/dashboard/api/summary")
    assert summary.status == 401 and "error" in await summary.json()
    assert stack.reads.asked == []  # nothing read for an anonymous caller

    stack.store.add("hq@example.com")
    assert await sign_in(client, "hq@example.com") == 303
    page = await client.get("/dashboard/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    body = await page.text()
    assert 'src="dashboard.js"' in body and "http" not in body.split("<body>")[0].replace(
        "http-equiv", ""
    )  # no CDN: every asset is served from here
    js = await client.get("/dashboard/dashboard.js")
    assert js.status == 200 and "api/summary" in await js.text()


async def test_the_session_cookie_is_signed_httponly_strict_and_secure_over_tls() -> None:
    for tls in (False, True):
        async for s in _stack(FakeReads(), tls=tls):
            s.store.add("hq@example.com")
            resp = await s.client.post(
                "/dashboard/sign-in",
                data={"email": "HQ@example.com ", "password": "right password"},
                allow_redirects=False,
            )
            assert resp.status == 303 and resp.headers["Location"] == "./"
            cookie = resp.headers["Set-Cookie"]
            name = "__Host-lo_operator" if tls else "lo_operator"
            assert cookie.startswith(name + "=")
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
            assert ("Secure" in cookie) is tls
            # a forged or altered cookie is no session
            value = cookie.split(";")[0].split("=", 1)[1]
            for forged in (value[:-2] + "AA", "x" * 40, ""):
                s.client.session.cookie_jar.clear()
                s.client.session.cookie_jar.update_cookies({name: forged})
                if not tls:  # the test client speaks plain HTTP
                    assert (await s.client.get("/dashboard/api/summary")).status == 401


async def test_wrong_passwords_unknown_accounts_and_cross_site_forms_get_no_session(
    stack: Stack,
) -> None:
    stack.store.add("hq@example.com")
    stack.store.add("tokens@example.com", password=None, token="lop_x")
    for email, password in (
        ("hq@example.com", "wrong"),
        ("nobody@example.com", "right password"),
        ("tokens@example.com", ""),
        ("", ""),
    ):
        resp = await stack.client.post(
            "/dashboard/sign-in", data={"email": email, "password": password}
        )
        assert resp.status == 401 and "Wrong email or password" in await resp.text()
        assert "Set-Cookie" not in resp.headers
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},  # a page with Referrer-Policy: no-referrer, in an older browser
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "same-site"},  # another host of the same site is another origin
    ):
        cross = await stack.client.post(
            "/dashboard/sign-in",
            data={"email": "hq@example.com", "password": "right password"},
            headers=headers,
        )
        assert cross.status == 403 and "Set-Cookie" not in cross.headers, headers
    assert stack.store.signed_in_ids == []


async def test_a_location_operator_sees_only_its_locations(stack: Stack) -> None:
    stack.store.add("austin@example.com", "location", tenants=frozenset({A}))
    assert await sign_in(stack.client, "austin@example.com") == 303
    mine = await stack.client.get(f"/dashboard/api/summary?tenant={A}&window=60")
    assert mine.status == 200
    theirs = await stack.client.get(f"/dashboard/api/summary?tenant={B}&window=60")
    nobody = await stack.client.get(f"/dashboard/api/summary?tenant={uuid.uuid4()}&window=60")
    assert theirs.status == nobody.status == 404  # another location is as unknown as none
    every = await (await stack.client.get("/dashboard/api/summary?tenant=all&window=60")).json()
    assert [t["name"] for t in every["tenants"]] == ["Austin"]
    assert [row["tenant_id"] for row in every["locations"]] == [str(A)]
    assert every["lag"]["groups"] == [] and not every["webhooks"]["available"]
    assert every["viewer"] == {"email": "a***@example.com", "role": "location"}
    assert stack.reads.asked == [frozenset({A}), frozenset({A})]
    assert stack.lag.reads == 0  # process-wide figures are hq's


async def test_declined_work_brought_back_is_scoped_to_the_operators_locations(
    stack: Stack,
) -> None:
    stack.store.add("austin@example.com", "location", tenants=frozenset({A}))
    stack.store.add("hq@example.com")
    assert await sign_in(stack.client, "austin@example.com") == 303
    mine = await (await stack.client.get("/dashboard/api/summary?tenant=all&window=60")).json()
    only_austin = {
        "followed_up": {"services": 2, "cents": 80_000},
        "brought_back": {"services": 1, "cents": 20_000},
        "value_ratio": 0.25,
    }
    assert mine["declined"] == only_austin  # Boston's figures are in no total it sees
    assert [(row["tenant_id"], row["declined"]) for row in mine["locations"]] == [
        (str(A), only_austin)
    ]
    await stack.client.post("/dashboard/sign-out")
    assert await sign_in(stack.client, "hq@example.com") == 303
    every = await (await stack.client.get("/dashboard/api/summary?window=60")).json()
    assert every["declined"]["followed_up"] == {"services": 7, "cents": 980_000}
    assert every["declined"]["brought_back"] == {"services": 4, "cents": 620_000}
    boston = await (await stack.client.get(f"/dashboard/api/summary?tenant={B}")).json()
    assert boston["declined"]["brought_back"] == {"services": 3, "cents": 600_000}


async def test_hq_sees_every_location_and_an_unknown_one_is_404(stack: Stack) -> None:
    stack.store.add("hq@example.com")
    await sign_in(stack.client, "hq@example.com")
    every = await (await stack.client.get("/dashboard/api/summary")).json()
    assert {t["name"] for t in every["tenants"]} == {"Austin", "Boston"}
    assert stack.reads.asked == [None] and stack.lag.reads == 1
    assert (await stack.client.get(f"/dashboard/api/summary?tenant={B}")).status == 200
    assert (await stack.client.get(f"/dashboard/api/summary?tenant={uuid.uuid4()}")).status == 404


async def test_an_operator_api_token_opens_the_json_and_nothing_else(stack: Stack) -> None:
    operator = stack.store.add("bot@example.com", password=None, token="placeholder")
    token = f"lop_{operator.id.hex}_{'s' * 43}"
    stack.store.change(operator, token_hash=f"fake-hash:{token}")
    ok = await stack.client.get(
        "/dashboard/api/summary", headers={"Authorization": f"Bearer {token}"}
    )
    assert ok.status == 200
    for bad in (token[:-1] + "t", f"lop_{uuid.uuid4().hex}_{'s' * 43}", "lop_", "Bearer"):
        resp = await stack.client.get(
            "/dashboard/api/summary", headers={"Authorization": f"Bearer {bad}"}
        )
        assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    page = await stack.client.get(
        "/dashboard/", headers={"Authorization": f"Bearer {token}"}, allow_redirects=False
    )
    assert page.status == 303  # the page wants a signed-in browser


async def test_reset_or_disable_ends_every_session(stack: Stack) -> None:
    operator = stack.store.add("hq@example.com")
    await sign_in(stack.client, "hq@example.com")
    assert (await stack.client.get("/dashboard/api/summary")).status == 200
    stack.store.change(operator, password_hash="fake-hash:new")  # leadctl operators reset
    assert (await stack.client.get("/dashboard/api/summary")).status == 401
    await sign_in(stack.client, "hq@example.com", "new")
    assert (await stack.client.get("/dashboard/api/summary")).status == 200
    stack.store.change(stack.store.accounts[operator.id], active=False)  # disable
    assert (await stack.client.get("/dashboard/api/summary")).status == 401
    assert await sign_in(stack.client, "hq@example.com", "new") == 401
    signed_out = await stack.client.post("/dashboard/sign-out", allow_redirects=False)
    assert signed_out.status == 303 and "lo_operator=" in signed_out.headers["Set-Cookie"]


@pytest.mark.parametrize(
    "query",
    [
        "tenant=not-a-uuid",
        "window=abc",
        "tenant=%00",
        "window=1e3",
        "window=",
        "window=61",
        "window=59",
        "window=100000",
    ],
)
async def test_bad_parameters_and_windows_the_page_does_not_offer_are_a_400(
    stack: Stack, query: str
) -> None:
    stack.store.add("hq@example.com")
    await sign_in(stack.client, "hq@example.com")
    res = await stack.client.get(f"/dashboard/api/summary?{query}")
    assert res.status == 400
    assert "error" in await res.json()
    assert stack.reads.asked == []


async def test_concurrent_identical_requests_share_one_query(stack: Stack) -> None:
    stack.store.add("hq@example.com")
    await sign_in(stack.client, "hq@example.com")
    stack.reads.delay = 0.2
    answers = await asyncio.gather(
        *(stack.client.get("/dashboard/api/summary?window=1440") for _ in range(20))
    )
    assert {a.status for a in answers} == {200}
    assert stack.reads.asked == [None]
    every_window = await asyncio.gather(
        *(stack.client.get(f"/dashboard/api/summary?window={w}") for w in WINDOWS * 3)
    )
    assert {a.status for a in every_window} == {200}
    assert len(stack.reads.asked) == len(WINDOWS)  # 1440 from the cache, the others once each


async def test_database_down_is_a_503_with_a_reason() -> None:
    # nothing listens on this port: every database read fails fast
    settings = CommonSettings(database_url=f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    engine = async_engine(settings.sqlalchemy_url, pool_size=2, max_overflow=0)
    dashboard = build_dashboard(settings, engine, registry=CollectorRegistry(), lag_reader=no_lag)
    async for s in _stack(dashboard):
        s.store.add("hq@example.com")
        await sign_in(s.client, "hq@example.com")
        res = await s.client.get("/dashboard/api/summary?tenant=all&window=60")
        assert res.status == 503
        assert await res.json() == {"error": "database unavailable"}
        res = await s.client.get(f"/dashboard/api/summary?tenant={A}&window=60")
        assert res.status == 503
    await engine.dispose()
