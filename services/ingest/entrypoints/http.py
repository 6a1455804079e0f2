"""The ingest HTTP side, public listener (aiohttp app factory): Shopmonkey webhooks, website
leads, health. Only what outside parties call is here: the dashboard, its API and `/metrics`
are on the admin listener (`entrypoints.admin`), never on this one.

Routes:
- `POST /webhooks/shopmonkey/companies/{company_id}/order`: one URL (and secret) per Shopmonkey
  company, for its company-global webhook: each order is routed to its own location's tenant
  (unknown company → 404; an order of a location with no tenant → 202 "ignored").
- `POST /webhooks/shopmonkey/{tenant_id}/order`: one URL per location (verified with its
  company's secret); an order of another location of the company goes to that location's
  tenant, never to this one.
- `POST /webhooks/shopmonkey/order`: the seed's endpoint, for the TENANT_ID location.
- `POST /api/leads`: website lead forms, `Authorization: Bearer <website API key>`.
- `/healthz`, `/readyz` (Kafka and PostgreSQL answer), `/openapi.json`.

On each Shopmonkey route the company and its secret are known, from the directory's cache,
before the body is trusted (nothing is produced for an unknown one).

The other route modules are mounted here, one line each in `create_app`: the provider
webhooks (`provider_webhooks`), the lead API (`lead_api`), the signed unsubscribe links
(`unsubscribe`), all reading their parts from `app[SIGNALS]`. Each documents its routes
with a module-level `OPENAPI_PATHS` fragment (see `entrypoints.openapi`), merged into
`/openapi.json`.

Every answer is JSON; errors map to answers in `answers.error_answer`: 4xx with a reason and
nothing produced; 503 with `Retry-After` when Kafka (or Shopmonkey, for a customer look-up)
did not answer, so the sender retries; 2xx only once Kafka acknowledged the record.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import Counter

from services.common.domain import hops
from services.common.observability import add_observability_routes
from services.ingest.adapters.metrics import (
    WEBHOOK_REQUESTS,
    WEBHOOK_SECONDS,
    WEBSITE_REQUESTS,
    child,
)
from services.ingest.bootstrap import SERVICE, Ingest, build_ingest
from services.ingest.domain.failure_throttle import FailureThrottle
from services.ingest.domain.model import IngestTenant
from services.ingest.domain.routing import MAX_ID_LENGTH
from services.ingest.entrypoints.answers import SIGNALS, error_answer, json_answer, too_many
from services.ingest.entrypoints.api_docs import OPENAPI_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.entrypoints.api_docs import OPENAPI_PATHS as OPENAPI_PATHS
from services.ingest.entrypoints.lead_api import add_lead_api_routes
from services.ingest.entrypoints.openapi import add_openapi_route
from services.ingest.entrypoints.provider_webhooks import add_provider_webhook_routes
from services.ingest.entrypoints.throttle import THROTTLE, THROTTLED, ClientThrottle
from services.ingest.entrypoints.unsubscribe import add_unsubscribe_routes
from services.ingest.errors import PayloadTooLarge, UnknownCompany, UnknownTenant
from services.ingest.service_layer.webhooks import Accepted, Ignored
from services.ingest.settings import IngestSettings

log = logging.getLogger(__name__)
INGEST = web.AppKey("ingest", Ingest)


def _answer(result: Accepted | Ignored) -> web.Response:
    if isinstance(result, Ignored):
        return json_answer({"success": True, "ignored": result.reason}, status=202)
    lead = str(result.lead_id) if result.lead_id is not None else None
    return json_answer({"success": True, "leadId": lead, "eventId": result.event_id})


async def _body(request: web.Request, limit: int) -> bytes:
    body: bytes | None = None
    if request.content_length is None or request.content_length <= limit:
        if request.content.is_eof():  # the whole body came with the request (usual): as is
            body = request.content.read_nowait()
        else:
            with contextlib.suppress(web.HTTPRequestEntityTooLarge):
                body = await request.read()
    if body is None or len(body) > limit:
        raise PayloadTooLarge(f"body over {limit} bytes")
    return body


@functools.lru_cache(maxsize=4096)
def _tenant_id(raw: str) -> uuid.UUID:
    """The tenant id of a webhook URL (parsed once per location: it is in every request)."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise UnknownTenant("unknown tenant") from None


def _answered(
    counter: Counter, result: Accepted | Ignored, started: float, *, histogram: bool = True
) -> web.Response:
    """The answer to a handled request, its outcome counted (with `_failed`, the one place
    that maps results and errors to answers and metrics)."""
    child(counter, result.outcome).inc()
    if histogram:
        child(WEBHOOK_SECONDS, "ok").observe(time.perf_counter() - started)
    return _answer(result)


def _failed(
    counter: Counter,
    exc: Exception,
    started: float,
    *,
    route: str,
    request: web.Request,
    throttle: ClientThrottle,
    histogram: bool = True,
) -> web.Response:
    """The answer to a request that raised `exc`, its outcome counted (an authentication
    failure also against the client's address)."""
    response, outcome, kind = error_answer(exc, route)
    throttle.note(request, outcome)
    child(counter, outcome).inc()
    if histogram:
        child(WEBHOOK_SECONDS, kind).observe(time.perf_counter() - started)
    return response


def add_signal_routes(app: web.Application) -> None:
    """The provider-webhook, unsubscribe and lead API routes; their parts are `app[SIGNALS]`."""
    add_provider_webhook_routes(app)
    add_unsubscribe_routes(app)
    add_lead_api_routes(app)


def create_app(settings: IngestSettings, *, ingest: Ingest | None = None) -> web.Application:
    """The app; its producer, DB engine and HTTP client live in `cleanup_ctx` unless `ingest`
    (prebuilt parts, e.g. fakes in unit tests) is given."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    if ingest is None:

        async def resources(app: web.Application) -> AsyncIterator[None]:
            async with build_ingest(settings) as parts:
                app[INGEST] = parts
                app[SIGNALS] = parts.signals
                yield

        app.cleanup_ctx.append(resources)
    else:
        app[INGEST] = ingest
        app[SIGNALS] = ingest.signals
    limit = settings.max_body_bytes
    throttle = app[THROTTLE] = ClientThrottle(
        FailureThrottle(
            rate=settings.auth_failures_per_minute / 60.0,
            burst=settings.auth_failure_burst,
            max_clients=settings.auth_failure_clients,
        ),
        proxy_hops=settings.trusted_proxy_hops,
    )

    async def shopmonkey_order(request: web.Request) -> web.Response:
        # The hot path: the company comes from the directory's cache and the body with the
        # request, usually without waiting for either.
        started = time.perf_counter()
        trace = hops.Trace({hops.WEBHOOK_RECEIVED: hops.now_us()})
        wait = throttle.retry_after(request)
        if wait is not None:
            child(WEBHOOK_REQUESTS, THROTTLED).inc()
            return too_many(wait)
        try:
            parts = request.app[INGEST]
            match = request.match_info
            tenant: IngestTenant | None = None
            company_id = match.get("company_id")
            if company_id is not None:
                ok = len(company_id) <= MAX_ID_LENGTH
                company = await parts.tenants.company(company_id) if ok else None
                if company is None:
                    raise UnknownCompany("unknown company")
            else:
                raw = match.get("tenant_id")
                tenant_id = parts.settings.tenant_id if raw is None else _tenant_id(raw)
                if tenant_id is None:
                    raise UnknownTenant(
                        "no default tenant: set TENANT_ID or use the per-tenant URL"
                    )
                company = await parts.tenants.company_of(tenant_id)
                tenant = company.by_id.get(tenant_id) if company is not None else None
                if company is None or tenant is None:
                    raise UnknownTenant("unknown tenant")
            body = await _body(request, limit)
            with hops.tracing(trace):  # the order event carries when the webhook came
                result = await parts.webhooks.handle(
                    company, request.headers, body, request.content_type, tenant=tenant
                )
        except Exception as exc:
            return _failed(
                WEBHOOK_REQUESTS,
                exc,
                started,
                route="shopmonkey_webhook",
                request=request,
                throttle=throttle,
            )
        return _answered(WEBHOOK_REQUESTS, result, started)

    async def website_lead(request: web.Request) -> web.Response:
        started = time.perf_counter()
        wait = throttle.retry_after(request)
        if wait is not None:
            child(WEBSITE_REQUESTS, THROTTLED).inc()
            return too_many(wait)
        try:
            body = await _body(request, limit)
            result = await request.app[INGEST].website.handle(
                request.headers.get("Authorization"), body, request.content_type
            )
        except Exception as exc:
            return _failed(
                WEBSITE_REQUESTS,
                exc,
                started,
                route="website_lead",
                request=request,
                throttle=throttle,
                histogram=False,
            )
        return _answered(WEBSITE_REQUESTS, result, started, histogram=False)

    async def ready() -> dict[str, bool]:
        return await app[INGEST].ready()

    app.router.add_post("/webhooks/shopmonkey/order", shopmonkey_order)
    app.router.add_post("/webhooks/shopmonkey/{tenant_id}/order", shopmonkey_order)
    app.router.add_post("/webhooks/shopmonkey/companies/{company_id}/order", shopmonkey_order)
    app.router.add_post("/api/leads", website_lead)
    add_observability_routes(app, service=SERVICE, ready=ready, metrics=False)
    add_signal_routes(app)
    add_openapi_route(app, title="lead-orchestrator ingest", version="1")
    return app
