"""SendGrid and Twilio webhooks, added to the ingest app by `create_app`.

Routes:
- `POST /webhooks/sendgrid/events`: SendGrid Signed Event Webhook (ECDSA, official helper).
- `POST /webhooks/twilio/status`: Twilio status callbacks (X-Twilio-Signature).
- `POST /webhooks/twilio/inbound`: inbound SMS: STOP/START/HELP/replies, answered in TwiML.

A request whose signature is missing, forged, altered or stale is refused (one generic 401,
the detail logged at info) before anything is written or produced; a form that cannot be read
is a 400. Twilio's ids and statuses are bounded (a MessageSid is 34 characters).
Suppressions are in PostgreSQL before any webhook answers; 2xx means the signals are in Kafka;
503 + Retry-After when Kafka or PostgreSQL did not answer.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from services.ingest.adapters.sendgrid_webhook import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
)
from services.ingest.adapters.twilio_webhook import (
    TWILIO_SIGNATURE_HEADER,
    twilio_refusal,
    twilio_url,
    twiml,
)
from services.ingest.bootstrap import SignalParts
from services.ingest.domain.provider_sendgrid import NotAnEventBatch
from services.ingest.entrypoints.answers import (
    SIGNALS,
    Work,
    counted,
    json_answer,
    refused,
    unauthorized,
)
from services.ingest.entrypoints.signal_api_docs import PROVIDER_WEBHOOK_PATHS as OPENAPI_PATHS
from services.ingest.entrypoints.signal_api_docs import SIGNAL_COMPONENTS as OPENAPI_COMPONENTS

__all__ = ["OPENAPI_COMPONENTS", "OPENAPI_PATHS", "add_provider_webhook_routes"]

log = logging.getLogger(__name__)
TWIML = "application/xml"
#: A Twilio webhook's work on the parts and the verified form parameters.
TwilioWork = Callable[[SignalParts, Any], Awaitable[tuple[web.Response, str]]]
#: Longest MessageSid / MessageStatus / ErrorCode / OptOutType read (Twilio's are 34 or less).
MAX_TWILIO_FIELD = 64


async def sendgrid_events(request: web.Request) -> tuple[web.Response, str]:
    parts = request.app[SIGNALS]
    if parts.sendgrid is None:
        # fail closed: nothing can be verified, so nothing is believed (SendGrid retries 24 h)
        return (
            unauthorized("sendgrid_events", "SENDGRID_WEBHOOK_PUBLIC_KEY is not configured"),
            "not_configured",
        )
    body = await request.read()
    refusal = parts.sendgrid.refusal(
        body,
        request.headers.get(SENDGRID_SIGNATURE_HEADER),
        request.headers.get(SENDGRID_TIMESTAMP_HEADER),
        datetime.now(UTC),
    )
    if refusal:
        return unauthorized("sendgrid_events", refusal), "unauthorized"
    try:
        result = await parts.service.sendgrid_events(body)
    except NotAnEventBatch as exc:
        return refused(str(exc), 400), "bad_request"
    answer = json_answer(
        {
            "success": True,
            "received": result.received,
            "new": result.new,
            "signals": result.signals,
            "suppressed": result.suppressed,
        }
    )
    return answer, "ok"


async def _twilio_form(
    request: web.Request, parts: SignalParts
) -> tuple[Any, tuple[web.Response, str] | None]:
    """The verified form parameters, or the answer refusing the request and its outcome."""
    route = request.path
    if parts.twilio_auth_token is None:
        detail = "TWILIO_AUTH_TOKEN is not configured"
        return None, (unauthorized(route, detail), "not_configured")
    if request.content_type != "application/x-www-form-urlencoded":
        return None, (refused("expected application/x-www-form-urlencoded", 415), "refused")
    try:
        form = await request.post()
        url = twilio_url(str(request.url), parts.twilio_public_url)
    except (ValueError, LookupError):  # undecodable body or charset, unusable Host
        return None, (refused("the form cannot be read", 400), "bad_request")
    refusal = twilio_refusal(
        parts.twilio_auth_token, url, form, request.headers.get(TWILIO_SIGNATURE_HEADER)
    )
    if refusal:
        return None, (unauthorized(route, refusal), "unauthorized")
    return form, None


def _field(form: Any, name: str) -> str | None:
    """A short form field (ids, statuses, codes); None when missing, empty or too long."""
    value = form.get(name)
    return value if isinstance(value, str) and 0 < len(value) <= MAX_TWILIO_FIELD else None


def _verified(work: TwilioWork) -> Work:
    """`work` on the parts and the form of a request whose Twilio signature is verified."""

    @functools.wraps(work)
    async def verified(request: web.Request) -> tuple[web.Response, str]:
        parts = request.app[SIGNALS]
        form, refusal = await _twilio_form(request, parts)
        if refusal is not None:
            return refusal
        return await work(parts, form)

    return verified


@_verified
async def twilio_status(parts: SignalParts, form: Any) -> tuple[web.Response, str]:
    sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    status = _field(form, "MessageStatus") or _field(form, "SmsStatus")
    if not sid or not status:
        return refused("MessageSid and MessageStatus are required", 400), "bad_request"
    result = await parts.service.twilio_status(
        message_sid=sid,
        message_status=status,
        error_code=_field(form, "ErrorCode"),
        to=_field(form, "To"),
    )
    outcome = "ignored" if result is None else ("ok" if result.matched else "unmatched")
    return web.Response(text=twiml(), content_type=TWIML), outcome


@_verified
async def twilio_inbound(parts: SignalParts, form: Any) -> tuple[web.Response, str]:
    sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    if not sid:
        return refused("MessageSid is required", 400), "bad_request"
    result = await parts.service.twilio_inbound(
        message_sid=sid,
        sender=_field(form, "From"),
        body=form.get("Body") if isinstance(form.get("Body"), str) else None,
        opt_out_type=_field(form, "OptOutType"),
    )
    return web.Response(text=twiml(result.reply), content_type=TWIML), result.keyword.value


def add_provider_webhook_routes(app: web.Application) -> None:
    """The routes; their parts are `app[SIGNALS]`."""
    app.router.add_post("/webhooks/sendgrid/events", counted("sendgrid_events", sendgrid_events))
    app.router.add_post("/webhooks/twilio/status", counted("twilio_status", twilio_status))
    app.router.add_post("/webhooks/twilio/inbound", counted("twilio_inbound", twilio_inbound))
