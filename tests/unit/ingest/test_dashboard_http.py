"""The dashboard sub-application's HTTP edges: static page with a strict CSP, redirect to the
trailing slash, 400 on bad parameters (never a 5xx), 503 when PostgreSQL does not answer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from services.common.db.engine import async_engine
from services.common.kafka.lag import PartitionLag
from services.common.settings import CommonSettings
from services.ingest.bootstrap import build_dashboard
from services.ingest.entrypoints.dashboard import create_dashboard_app
from tests.conftest import free_port


def no_lag() -> list[PartitionLag]:
    return []


@pytest.fixture
async def client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    # nothing listens on this port: every database read fails fast
    settings = CommonSettings(
        database_url=f"postgresql://nobody:x@127.0.0.1:{free_port()}/none",
    )
    engine = async_engine(settings.sqlalchemy_url, pool_size=2, max_overflow=0)
    dashboard = build_dashboard(settings, engine, registry=CollectorRegistry(), lag_reader=no_lag)
    root = web.Application()
    root.add_subapp("/dashboard", create_dashboard_app(lambda: dashboard))
    async with TestClient(TestServer(root)) as c:
        yield c
    await engine.dispose()


async def test_page_and_assets_are_served_with_a_strict_csp(
    client: TestClient[web.Request, web.Application],
) -> None:
    redirect = await client.get("/dashboard", allow_redirects=False)
    assert redirect.status == 302 and redirect.headers["Location"] == "/dashboard/"
    page = await client.get("/dashboard/")
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    body = await page.text()
    assert 'src="dashboard.js"' in body and "http" not in body.split("<body>")[0].replace(
        "http-equiv", ""
    )  # no CDN: every asset is served from here
    js = await client.get("/dashboard/dashboard.js")
    assert js.status == 200 and "api/summary" in await js.text()


@pytest.mark.parametrize(
    "query", ["tenant=not-a-uuid", "window=abc", "tenant=%00", "window=1e3", "window="]
)
async def test_bad_parameters_are_a_400(
    client: TestClient[web.Request, web.Application], query: str
) -> None:
    res = await client.get(f"/dashboard/api/summary?{query}")
    assert res.status == 400
    assert "error" in await res.json()


async def test_database_down_is_a_503_with_a_reason(
    client: TestClient[web.Request, web.Application],
) -> None:
    res = await client.get("/dashboard/api/summary?tenant=all&window=60")
    assert res.status == 503
    assert await res.json() == {"error": "database unavailable"}
