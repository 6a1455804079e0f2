"""The dashboard sub-application: one HTML page, its script and style sheet, and the JSON the
page polls (`api/summary`), every answer with a strict CSP.

Mounted by ingest at `/dashboard` (`app.add_subapp("/dashboard", create_dashboard_app(...))`);
the figures come from the `Dashboard` use case (`service_layer.dashboard`), whose webhook
history a background task samples every few seconds while the application runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources

from aiohttp import web

from services.ingest.entrypoints.dashboard_api_docs import OPENAPI_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.entrypoints.dashboard_api_docs import OPENAPI_PATHS as OPENAPI_PATHS
from services.ingest.errors import ReadModelUnavailable
from services.ingest.service_layer.dashboard import Dashboard

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = {
    "index.html": "text/html",
    "dashboard.js": "application/javascript",
    "dashboard.css": "text/css",
}
Handler = Callable[[web.Request], Awaitable[web.Response]]


def _static(name: str) -> bytes:
    files = resources.files("services.ingest.entrypoints")
    return files.joinpath("dashboard_static", name).read_bytes()


def _parse_tenant(raw: str) -> uuid.UUID | None:
    if raw in ("", "all"):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "tenant must be a UUID or all"}', content_type="application/json"
        ) from None


def _parse_window(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "window must be minutes (an integer)"}',
            content_type="application/json",
        ) from None


def _summary_handler(dashboard: Callable[[], Dashboard]) -> Handler:
    async def _summary(request: web.Request) -> web.Response:
        tenant = _parse_tenant(request.query.get("tenant", "all"))
        minutes = _parse_window(request.query.get("window", "60"))
        try:
            payload = await dashboard().summary(tenant, minutes)
        except ReadModelUnavailable as exc:
            log.warning("dashboard summary unavailable: %s", exc.reason)
            return web.json_response(
                {"error": "database unavailable"}, status=503, headers=SECURITY_HEADERS
            )
        return web.json_response(payload, headers=SECURITY_HEADERS)

    return _summary


def _file_handler(name: str, body: bytes) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        if name == "index.html" and not request.path.endswith("/"):
            raise web.HTTPFound(request.path + "/")
        return web.Response(body=body, content_type=STATIC[name], headers=SECURITY_HEADERS)

    return handler


def create_dashboard_app(
    dashboard: Callable[[], Dashboard], *, sample_seconds: float = 5.0
) -> web.Application:
    """The `/dashboard` sub-application.

    `dashboard` gives the use case (built by `bootstrap.build_dashboard`) once the parent
    application has started: ingest builds its parts, the dashboard's included, in its
    `cleanup_ctx`. The webhook history is sampled every `sample_seconds` while the app runs.
    """
    app = web.Application()

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                dashboard().sample()
                await asyncio.sleep(sample_seconds)

        task = asyncio.create_task(loop(), name="dashboard-webhook-sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sampler)
    index = _file_handler("index.html", _static("index.html"))
    app.router.add_get("", index)
    app.router.add_get("/", index)
    for name in ("dashboard.js", "dashboard.css"):
        app.router.add_get(f"/{name}", _file_handler(name, _static(name)))
    app.router.add_get("/api/summary", _summary_handler(dashboard))
    return app
