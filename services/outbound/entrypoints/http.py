"""The outbound service's HTTP side: /healthz, /readyz and /metrics on OUTBOUND_PORT."""

from __future__ import annotations

from aiohttp import web

from services.common.observability import add_observability_routes
from services.outbound.bootstrap import SERVICE, Outbound

OUTBOUND = web.AppKey("outbound", Outbound)


def create_app(outbound: Outbound) -> web.Application:
    app = web.Application()
    app[OUTBOUND] = outbound

    async def ready() -> dict[str, bool]:
        return await app[OUTBOUND].ready()

    add_observability_routes(app, service=SERVICE, ready=ready)
    return app
