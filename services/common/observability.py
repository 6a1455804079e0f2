"""Health and metrics endpoints every service exposes (`/healthz`, `/readyz`, `/metrics`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from services.common.loop_lag import watching_loop

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_observability_routes(
    app: web.Application,
    *,
    service: str,
    ready: ReadyCheck,
    registry: CollectorRegistry = REGISTRY,
    metrics: bool = True,
) -> None:
    """`/healthz`: the process serves. `/readyz`: its dependencies answer (503 if not).
    `/metrics` unless `metrics` is False (a public listener: metrics go on an operators'
    listener); with it, `<service>_event_loop_lag_seconds` of the loop the app runs on."""

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        checks = await ready()
        ok = all(checks.values())
        return web.json_response(
            {"status": "ok" if ok else "unavailable", "service": service, "checks": checks},
            status=200 if ok else 503,
        )

    async def exposition(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)

    async def loop_lag(_: web.Application) -> AsyncIterator[None]:
        async with watching_loop(service):
            yield

    if metrics:
        app.router.add_get("/metrics", exposition)
        app.cleanup_ctx.append(loop_lag)
