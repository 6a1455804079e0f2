"""How every ingest route answers: JSON bodies, and the one mapping of errors to answers.

Errors map here, in one place (the tree is in errors.py): a `RequestRejected` is a 4xx with its
reason and nothing produced, except that every failed authentication gets the same generic
401 (what exactly failed goes to the log at info, never to a stranger); an `Unavailable`
(Kafka, Shopmonkey) or a PostgreSQL failure is a 503 with `Retry-After`, so the sender
retries; anything else is a 500, logged. Every answer is JSON. A client address that keeps
failing authentication is answered 429 + Retry-After (`throttle.py`) before anything else.
The Shopmonkey webhook and website routes count their outcomes themselves (`http.py`, the hot
path); the provider-webhook, lead API and unsubscribe routes are wrapped by `counted`.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from services.ingest.adapters.metrics import SIGNAL_REQUESTS, SIGNAL_SECONDS
from services.ingest.bootstrap import SignalParts
from services.ingest.entrypoints.throttle import THROTTLE, THROTTLED
from services.ingest.errors import (
    InvalidPayload,
    PayloadTooLarge,
    RequestRejected,
    Unauthorized,
    Unavailable,
    UnknownCompany,
    UnknownTenant,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
#: The parts of the provider-webhook, lead API and unsubscribe routes (set by `create_app`).
SIGNALS = web.AppKey("signals", SignalParts)
DEFAULT_RETRY_AFTER = 5.0
#: What a PostgreSQL outage raises (driver errors, pool timeouts, refused connections).
DATABASE_ERRORS = (DBAPIError, PoolTimeout, OSError)
_OUTCOMES = {
    Unauthorized: "unauthorized",
    UnknownTenant: "unknown_tenant",
    UnknownCompany: "unknown_company",
    PayloadTooLarge: "too_large",
    UnsupportedMediaType: "unsupported_media_type",
    InvalidPayload: "bad_request",
}

Handler = Callable[[web.Request], Awaitable[web.Response]]
#: A route's work: its answer and the outcome it is counted under.
Work = Callable[[web.Request], Awaitable[tuple[web.Response, str]]]


def json_answer(doc: dict[str, Any], status: int = 200, **kwargs: Any) -> web.Response:
    return web.Response(
        body=orjson.dumps(doc),
        status=status,
        content_type="application/json",
        charset="utf-8",
        **kwargs,
    )


def refused(reason: str, status: int) -> web.Response:
    """A 4xx with its reason."""
    return json_answer({"success": False, "reason": reason}, status=status)


#: The one reason every failed authentication is answered with.
UNAUTHORIZED = "missing or invalid credentials"


def unauthorized(route: str, detail: str, *, headers: dict[str, str] | None = None) -> web.Response:
    """The generic 401; `detail` (what failed) goes to the log at info only."""
    log.info("%s: unauthorized: %s", route, detail)
    return json_answer({"success": False, "reason": UNAUTHORIZED}, status=401, headers=headers)


def too_many(retry_after: int) -> web.Response:
    """429 for a client address over its budget of failed authentications."""
    return json_answer(
        {"success": False, "reason": "too many failed attempts; retry later"},
        status=429,
        headers={"Retry-After": str(retry_after)},
    )


def _unavailable(reason: str, retry_after: float | None) -> web.Response:
    return json_answer(
        {"success": False, "reason": reason},
        status=503,
        headers={"Retry-After": str(math.ceil(retry_after or DEFAULT_RETRY_AFTER))},
    )


def error_answer(exc: Exception, route: str) -> tuple[web.Response, str, str]:
    """(answer, outcome, status class) of a request of `route` that raised `exc`."""
    if isinstance(exc, Unauthorized):
        return unauthorized(route, exc.reason), "unauthorized", "4xx"
    if isinstance(exc, RequestRejected):
        return refused(exc.reason, exc.status), _OUTCOMES.get(type(exc), "bad_request"), "4xx"
    if isinstance(exc, Unavailable):
        log.warning("%s: answering 503: %s", route, exc.reason)
        return _unavailable(exc.reason, exc.retry_after), "unavailable", "503"
    if isinstance(exc, DATABASE_ERRORS):
        log.warning("%s: answering 503: PostgreSQL: %s", route, type(exc).__name__)
        return _unavailable("database unavailable", None), "unavailable", "503"
    log.error("unexpected error while ingesting", exc_info=exc)
    return refused("internal error", 500), "error", "500"


def counted(route: str, work: Work, *, throttled: bool = True) -> Handler:
    """`work` as a route handler: every outcome counted and timed, errors answered by
    `error_answer`, callers that keep failing authentication throttled (unless `throttled`
    is False: a route that needs no credentials, such as an unsubscribe link, stays open to
    whoever shares an address with them). The handler keeps `work`'s module, whose
    `OPENAPI_PATHS` documents it."""

    @functools.wraps(work)
    async def handler(request: web.Request) -> web.Response:
        started = time.perf_counter()
        throttle = request.app.get(THROTTLE) if throttled else None
        wait = None if throttle is None else throttle.retry_after(request)
        if wait is not None:
            SIGNAL_REQUESTS.labels(route, THROTTLED).inc()
            return too_many(wait)
        try:
            response, outcome = await work(request)
        except web.HTTPException:
            raise  # aiohttp's own answers (e.g. 413 over client_max_size)
        except Exception as exc:
            response, outcome, _ = error_answer(exc, route)
        if throttle is not None:
            throttle.note(request, outcome)
        SIGNAL_REQUESTS.labels(route, outcome).inc()
        SIGNAL_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    return handler
