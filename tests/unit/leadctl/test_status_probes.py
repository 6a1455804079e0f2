"""`leadctl status` asks every service's health at once, over IPv4 loopback where the URL says
localhost (real HTTP peers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from leadctl.status.health import loopback, probe_services
from services.common.observability import add_observability_routes
from tests.support.http_peer import serving


def test_localhost_is_asked_as_ipv4_loopback_and_other_hosts_as_given() -> None:
    assert loopback("localhost") == "127.0.0.1"
    assert loopback("LOCALHOST.") == "127.0.0.1"
    assert loopback("10.0.0.5") == "10.0.0.5"
    assert loopback("ingest.internal") == "ingest.internal"


async def test_localhost_probes_go_to_127_0_0_1() -> None:
    async def ready() -> dict[str, bool]:
        return {"kafka": True}

    app = web.Application()
    add_observability_routes(app, service="ingest", ready=ready)
    async with serving(app) as port:
        [report] = await probe_services({"ingest": port}, "localhost", 2.0)
    assert report["url"] == f"http://127.0.0.1:{port}"
    assert report["up"] and report["ready"], report


async def test_every_service_is_asked_at_once() -> None:
    """Each /healthz answers only once all four were asked: one after the other, the first
    would wait out its bound and be reported down."""
    services = ("ingest", "poller", "sequencer", "outbound")
    arrived: set[int] = set()
    all_asked = asyncio.Event()

    def app_for(port_box: list[int]) -> web.Application:
        async def healthz(_: web.Request) -> web.Response:
            arrived.add(port_box[0])
            if len(arrived) == len(services):
                all_asked.set()
            await all_asked.wait()
            return web.json_response({"status": "ok"})

        async def readyz(_: web.Request) -> web.Response:
            return web.json_response({"checks": {}})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/readyz", readyz)
        return app

    async with contextlib.AsyncExitStack() as stack:
        ports: dict[str, int | str] = {}
        for name in services:
            box: list[int] = []
            port = await stack.enter_async_context(serving(app_for(box)))
            box.append(port)
            ports[name] = port
        reports = await probe_services(ports, "127.0.0.1", 5.0)
    assert [r["service"] for r in reports] == list(services)
    assert all(r["up"] for r in reports), reports
