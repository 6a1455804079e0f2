"""The ingest admin listener (aiohttp app factory): what operators use, never on the public port.

Served on ADMIN_HOST:ADMIN_PORT (loopback by default) by the same process as the public app,
on the same parts (`Ingest`, built by the public app's cleanup_ctx):
- `/dashboard` (sign-in page, the page, `api/summary`; `entrypoints.dashboard`): operators
  signed in, or with an operator API token, each seeing only its locations;
- `/metrics` (Prometheus, which scrapes this port), `/healthz`, `/readyz`, `/openapi.json`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from services.common.observability import add_observability_routes
from services.ingest.bootstrap import Ingest
from services.ingest.entrypoints.dashboard import create_dashboard_app
from services.ingest.entrypoints.openapi import add_openapi_route
from services.ingest.settings import IngestSettings

#: Largest body the admin listener reads (a sign-in form).
ADMIN_MAX_BODY = 16 * 1024


def create_admin_app(settings: IngestSettings, parts: Callable[[], Ingest]) -> web.Application:
    """The admin app; `parts` gives the running ingest's parts once it has started."""
    app = web.Application(client_max_size=ADMIN_MAX_BODY)

    async def ready() -> dict[str, bool]:
        return await parts().ready()

    add_observability_routes(app, service="ingest", ready=ready)
    app.add_subapp(
        "/dashboard",
        create_dashboard_app(
            lambda: parts().dashboard,
            lambda: parts().operators,
            tls=settings.admin_tls,
            desk=lambda: parts().desk,
        ),
    )
    add_openapi_route(app, title="lead-orchestrator ingest (admin)", version="1")
    return app
