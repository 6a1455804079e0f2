"""The dashboard sub-application: one HTML page and the JSON it polls.

Mounted by ingest at `/dashboard` (`app.add_subapp("/dashboard", create_dashboard_app(...))`).
Figures come from PostgreSQL (funnel, touch points), from this process's Prometheus registry
(webhook rate and latency) and from Kafka (consumer lag); each source is cached a few seconds
so many open pages cost the database one query pair per refresh interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.engine import async_engine
from services.common.kafka.lag import consumer_lag
from services.common.settings import CommonSettings
from services.ingest.dashboard import queries
from services.ingest.dashboard.api_docs import OPENAPI_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.dashboard.api_docs import OPENAPI_PATHS as OPENAPI_PATHS
from services.ingest.dashboard.lag_probe import LagProbe, LagReader
from services.ingest.dashboard.summary import Window, build_summary
from services.ingest.dashboard.webhook_stats import WebhookHistory, WebhookStats

log = logging.getLogger(__name__)

#: Names of the ingest webhook instruments (services/ingest/adapters/metrics.py).
WEBHOOK_REQUEST_METRIC = "ingest_webhook_requests_total"
WEBHOOK_LATENCY_METRIC = "ingest_webhook_processing_seconds"

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


class Dashboard:
    """State shared by the handlers: the engine, caches, webhook history and the lag probe."""

    def __init__(
        self,
        *,
        engine: AsyncEngine | None,
        snapshot: Callable[[], WebhookStats],
        lag: LagProbe,
        request_metric: str,
        cache_seconds: float = 2.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self.engine = engine
        self.snapshot = snapshot
        self.lag = lag
        self.request_metric = request_metric
        self.history = WebhookHistory(keep_seconds=24 * 3600)
        self._cache_seconds = cache_seconds
        self._timeout_ms = statement_timeout_ms
        self._cache: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        self._names: tuple[float, dict[uuid.UUID, str]] = (0.0, {})
        self._db_lock = asyncio.Lock()

    def sample(self, *, min_interval: float = 0.0) -> None:
        """Snapshot the webhook instruments (skipped if the last one is younger than
        `min_interval` seconds, so a page refresh can ask for a fresh point cheaply)."""
        latest = self.history.latest
        if latest is not None and time.time() - latest.at < min_interval:
            return
        self.history.add(self.snapshot())

    async def summary(self, tenant: uuid.UUID | None, minutes: int) -> dict[str, Any]:
        window = Window.of(minutes, datetime.now(UTC))
        key = (str(tenant), window.minutes)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._cache_seconds:
            return hit[1]
        async with self._db_lock:  # one dashboard query pair at a time, whatever the viewers
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self._cache_seconds:
                return hit[1]
            (names, leads, touches), lag = await asyncio.gather(
                self._query(tenant, window), self.lag.report()
            )
        self.sample(min_interval=2.0)  # viewers see webhook figures as fresh as their refresh
        payload = build_summary(
            window=window,
            tenant=tenant,
            names=names,
            leads=leads,
            touches=touches,
            webhooks=self._webhooks(window),
            lag=lag.to_json(),
        )
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), payload)
        return payload

    async def _query(
        self, tenant: uuid.UUID | None, window: Window
    ) -> tuple[dict[uuid.UUID, str], queries.LeadCounts, queries.TouchCounts]:
        if self.engine is None:
            raise RuntimeError("dashboard used before its application started")
        async with self.engine.connect() as conn:
            await conn.execute(text(f"SET LOCAL statement_timeout = {int(self._timeout_ms)}"))
            if time.monotonic() - self._names[0] > 30 or not self._names[1]:
                self._names = (time.monotonic(), await queries.tenant_names(conn))
            since, bucket = window.since, window.bucket_seconds
            leads = await queries.lead_counts(
                conn, tenant=tenant, since=since, bucket_seconds=bucket
            )
            touches = await queries.touch_counts(
                conn, tenant=tenant, since=since, bucket_seconds=bucket
            )
            await conn.rollback()
        return self._names[1], leads, touches

    def _webhooks(self, window: Window) -> dict[str, Any]:
        latest = self.history.latest
        last_minute = self.history.recent(60)
        in_window = self.history.recent(window.minutes * 60)
        return {
            "available": bool(latest and latest.available),
            "metric": self.request_metric,
            "requests_total": latest.requests if latest else 0,
            "by_label": latest.by_label if latest else {},
            "last_minute": last_minute.to_json() if last_minute else None,
            "window": in_window.to_json() if in_window else None,
            "series": self.history.series(window.minutes * 60),
        }


DASHBOARD = web.AppKey("dashboard", Dashboard)


def _static(name: str) -> bytes:
    return resources.files("services.ingest.dashboard").joinpath("static", name).read_bytes()


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


async def _summary(request: web.Request) -> web.Response:
    tenant = _parse_tenant(request.query.get("tenant", "all"))
    minutes = _parse_window(request.query.get("window", "60"))
    try:
        payload = await request.app[DASHBOARD].summary(tenant, minutes)
    except (DBAPIError, PoolTimeout, OSError) as exc:
        log.warning("dashboard summary unavailable: %s", exc.__class__.__name__)
        return web.json_response(
            {"error": "database unavailable"}, status=503, headers=SECURITY_HEADERS
        )
    return web.json_response(payload, headers=SECURITY_HEADERS)


def _file_handler(name: str, body: bytes) -> Callable[[web.Request], Any]:
    async def handler(request: web.Request) -> web.Response:
        if name == "index.html" and not request.path.endswith("/"):
            raise web.HTTPFound(request.path + "/")
        return web.Response(body=body, content_type=STATIC[name], headers=SECURITY_HEADERS)

    return handler


def create_dashboard_app(
    *,
    settings: CommonSettings,
    engine: AsyncEngine | Callable[[], AsyncEngine] | None = None,
    registry: CollectorRegistry = REGISTRY,
    request_metric: str = WEBHOOK_REQUEST_METRIC,
    latency_metric: str = WEBHOOK_LATENCY_METRIC,
    lag_reader: LagReader | None = None,
    sample_seconds: float = 5.0,
) -> web.Application:
    """The `/dashboard` sub-application.

    `engine`: the caller's async engine, or a function giving it once the parent application
    has started (ingest's, built by `bootstrap.build_ingest`), or None to give the dashboard
    its own small pool (opened and closed with the application). `registry` is where ingest's
    webhook instruments live (the default registry of the process).
    """
    read_lag = lag_reader or functools.partial(
        consumer_lag, settings.kafka, settings.topics, timeout=5.0
    )
    dashboard = Dashboard(
        engine=engine if isinstance(engine, AsyncEngine) else None,
        snapshot=functools.partial(
            WebhookStats.from_registry,
            registry,
            request_metric=request_metric,
            latency_metric=latency_metric,
        ),
        lag=LagProbe(read_lag, ttl=5.0),
        request_metric=request_metric,
    )
    app = web.Application()
    app[DASHBOARD] = dashboard

    async def own_engine(app: web.Application) -> AsyncIterator[None]:
        own = async_engine(settings.sqlalchemy_url, pool_size=2, max_overflow=0)
        app[DASHBOARD].engine = own
        yield
        await own.dispose()

    async def shared_engine(app: web.Application) -> AsyncIterator[None]:
        assert callable(engine)
        app[DASHBOARD].engine = engine()
        yield

    if engine is None:
        app.cleanup_ctx.append(own_engine)
    elif not isinstance(engine, AsyncEngine):
        app.cleanup_ctx.append(shared_engine)

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                app[DASHBOARD].sample()
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
    app.router.add_get("/api/summary", _summary)
    return app
