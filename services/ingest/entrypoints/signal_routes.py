"""Provider webhooks and the lead API (issue 6), added to the ingest app by `create_app`.

Routes:
- `POST /webhooks/sendgrid/events`: SendGrid Signed Event Webhook (ECDSA, official helper).
- `POST /webhooks/twilio/status`: Twilio status callbacks (X-Twilio-Signature).
- `POST /webhooks/twilio/inbound`: inbound SMS: STOP/START/HELP/replies, answered in TwiML.
- `GET /api/leads/{leadId}`: a lead for the chat service (tenant-scoped bearer token).
- `POST /api/leads/{leadId}/signals`: chat_opened, appointment_booked, qualified, lost.
- `GET|POST /unsubscribe/{tenantId}/{leadId}`: the emails' one-click unsubscribe (RFC 8058).

A request whose signature is missing, forged, altered or stale is refused (401) before anything
is written or produced. Suppressions are in PostgreSQL before any webhook answers; 2xx means the
signals are in Kafka; 503 + Retry-After when Kafka or PostgreSQL did not answer.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from schemas.events import SignalKind
from services.ingest.domain.provider_sendgrid import NotAnEventBatch
from services.ingest.domain.provider_signatures import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    TWILIO_SIGNATURE_HEADER,
    twilio_refusal,
    twilio_url,
)
from services.ingest.domain.provider_twilio import twiml
from services.ingest.errors import Unavailable
from services.ingest.service_layer.provider_signals import CHAT_KINDS
from services.ingest.service_layer.provider_signals_wiring import LazySignalParts, SignalParts

log = logging.getLogger(__name__)
SIGNAL_REQUESTS = Counter(
    "ingest_signal_requests_total",
    "Provider webhook and lead API requests by route and outcome",
    ["route", "outcome"],
)
SIGNAL_SECONDS = Histogram(
    "ingest_signal_request_seconds",
    "Provider webhook and lead API handling time by route (server side)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
PARTS = web.AppKey("signal_parts", LazySignalParts)
FIXED_PARTS = web.AppKey("signal_fixed_parts", SignalParts)
TWIML = "application/xml"
RETRY_AFTER = 5


class ChatSignalRequest(BaseModel):
    """Body of `POST /api/leads/{leadId}/signals`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    kind: SignalKind
    event_id: str | None = Field(default=None, alias="eventId", max_length=200)
    occurred_at: datetime | None = Field(default=None, alias="occurredAt")
    detail: str | None = Field(default=None, max_length=500)


def _json(status: int, **body: Any) -> web.Response:
    return web.json_response(body, status=status)


def _refused(reason: str, status: int = 401) -> web.Response:
    return _json(status, success=False, reason=reason)


def _unavailable(reason: str) -> web.Response:
    return web.json_response(
        {"success": False, "reason": reason},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER)},
    )


async def _parts(request: web.Request) -> SignalParts:
    fixed = request.app.get(FIXED_PARTS)
    if fixed is not None:
        return fixed
    return await request.app[PARTS].get()


def _guarded(
    route: str, work: Callable[[web.Request], Awaitable[tuple[web.Response, str]]]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """Map dependency failures to 503 in one place and count every outcome."""

    async def handler(request: web.Request) -> web.Response:
        started = time.perf_counter()
        try:
            response, outcome = await work(request)
        except Unavailable as exc:
            log.warning("%s: answering 503: %s", route, exc.reason)
            retry = math.ceil(exc.retry_after or RETRY_AFTER)
            response = web.json_response(
                {"success": False, "reason": exc.reason},
                status=503,
                headers={"Retry-After": str(retry)},
            )
            outcome = "unavailable"
        except (DBAPIError, PoolTimeout, OSError) as exc:
            log.warning("%s: answering 503: PostgreSQL: %s", route, type(exc).__name__)
            response, outcome = _unavailable("database unavailable"), "unavailable"
        SIGNAL_REQUESTS.labels(route, outcome).inc()
        SIGNAL_SECONDS.labels(route).observe(time.perf_counter() - started)
        return response

    return handler


# SendGrid ----------------------------------------------------------------------------------------
async def sendgrid_events(request: web.Request) -> tuple[web.Response, str]:
    parts = await _parts(request)
    if parts.sendgrid is None:
        # fail closed: nothing can be verified, so nothing is believed (SendGrid retries 24 h)
        log.error("sendgrid events refused: SENDGRID_WEBHOOK_PUBLIC_KEY is not configured")
        return _refused("cannot verify: no webhook key configured"), "not_configured"
    body = await request.read()
    refusal = parts.sendgrid.refusal(
        body,
        request.headers.get(SENDGRID_SIGNATURE_HEADER),
        request.headers.get(SENDGRID_TIMESTAMP_HEADER),
        datetime.now(UTC),
    )
    if refusal:
        log.warning("sendgrid events refused: %s", refusal)
        return _refused(refusal), "unauthorized"
    try:
        result = await parts.service.sendgrid_events(body)
    except NotAnEventBatch as exc:
        return _refused(str(exc), 400), "bad_request"
    answer = _json(
        200,
        success=True,
        received=result.received,
        new=result.new,
        signals=result.signals,
        suppressed=result.suppressed,
    )
    return answer, "ok"


# Twilio ------------------------------------------------------------------------------------------
async def _twilio_form(request: web.Request, parts: SignalParts) -> tuple[Any, web.Response | None]:
    """The verified form parameters, or the answer refusing the request."""
    if parts.twilio_auth_token is None:
        log.error("twilio webhook refused: TWILIO_AUTH_TOKEN is not configured")
        return None, _refused("cannot verify: no Twilio auth token configured")
    if request.content_type != "application/x-www-form-urlencoded":
        return None, _refused("expected application/x-www-form-urlencoded", 415)
    form = await request.post()
    url = twilio_url(str(request.url), parts.twilio_public_url)
    refusal = twilio_refusal(
        parts.twilio_auth_token, url, form, request.headers.get(TWILIO_SIGNATURE_HEADER)
    )
    if refusal:
        log.warning("twilio webhook %s refused: %s", request.path, refusal)
        return None, _refused(refusal)
    return form, None


def _field(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


async def twilio_status(request: web.Request) -> tuple[web.Response, str]:
    parts = await _parts(request)
    form, refused = await _twilio_form(request, parts)
    if refused is not None:
        return refused, "unauthorized" if refused.status == 401 else "refused"
    sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    status = _field(form, "MessageStatus") or _field(form, "SmsStatus")
    if not sid or not status:
        return _refused("MessageSid and MessageStatus are required", 400), "bad_request"
    result = await parts.service.twilio_status(
        message_sid=sid,
        message_status=status,
        error_code=_field(form, "ErrorCode"),
        to=_field(form, "To"),
    )
    outcome = "ignored" if result is None else ("ok" if result.matched else "unmatched")
    return web.Response(text=twiml(), content_type=TWIML), outcome


async def twilio_inbound(request: web.Request) -> tuple[web.Response, str]:
    parts = await _parts(request)
    form, refused = await _twilio_form(request, parts)
    if refused is not None:
        return refused, "unauthorized" if refused.status == 401 else "refused"
    sid = _field(form, "MessageSid") or _field(form, "SmsSid")
    if not sid:
        return _refused("MessageSid is required", 400), "bad_request"
    result = await parts.service.twilio_inbound(
        message_sid=sid,
        sender=_field(form, "From"),
        body=form.get("Body") if isinstance(form.get("Body"), str) else None,
        opt_out_type=_field(form, "OptOutType"),
    )
    return web.Response(text=twiml(result.reply), content_type=TWIML), result.keyword.value


# Lead API ----------------------------------------------------------------------------------------
async def _tenant(request: web.Request, parts: SignalParts) -> uuid.UUID | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return await parts.leads.tenant_for_token(token.strip())


def _lead_id(request: web.Request) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.match_info["leadId"])
    except ValueError:
        return None


def _unauthorized() -> web.Response:
    return web.json_response(
        {"success": False, "reason": "missing or invalid bearer token"},
        status=401,
        headers={"WWW-Authenticate": 'Bearer realm="lead-api"'},
    )


def _not_found() -> web.Response:
    return _json(404, success=False, reason="lead not found")


async def get_lead(request: web.Request) -> tuple[web.Response, str]:
    parts = await _parts(request)
    tenant_id = await _tenant(request, parts)
    if tenant_id is None:
        return _unauthorized(), "unauthorized"
    lead_id = _lead_id(request)
    view = None
    if lead_id is not None:
        view = await parts.leads.lead_view(tenant_id=tenant_id, lead_id=lead_id)
    if view is None:
        return _not_found(), "not_found"
    return web.Response(text=view, content_type="application/json"), "ok"


async def post_lead_signal(request: web.Request) -> tuple[web.Response, str]:
    parts = await _parts(request)
    tenant_id = await _tenant(request, parts)
    if tenant_id is None:
        return _unauthorized(), "unauthorized"
    lead_id = _lead_id(request)
    if lead_id is None or not await parts.leads.lead_exists(tenant_id=tenant_id, lead_id=lead_id):
        return _not_found(), "not_found"
    try:
        body = ChatSignalRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return _refused(reason, 400), "bad_request"
    if body.kind not in CHAT_KINDS:
        allowed = ", ".join(sorted(k.value for k in CHAT_KINDS))
        return _refused(f"kind must be one of: {allowed}", 400), "bad_request"
    if body.occurred_at is not None and body.occurred_at.tzinfo is None:
        return _refused("occurredAt needs a timezone", 400), "bad_request"
    signal = await parts.service.chat_signal(
        tenant_id=tenant_id,
        lead_id=lead_id,
        kind=body.kind,
        event_id=body.event_id,
        occurred_at=body.occurred_at,
        detail=body.detail,
    )
    return _json(202, success=True, signalId=signal.signal_id), "ok"


# One-click unsubscribe ---------------------------------------------------------------------------
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto;"><h1>{title}</h1>
{body}</body></html>"""
_CONFIRM = _PAGE.format(
    title="Unsubscribe",
    body=(
        "<p>Stop receiving emails about your estimate from this location?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    ),
)
_DONE = _PAGE.format(
    title="You are unsubscribed", body="<p>You will not receive these emails any more.</p>"
)


def _ids(request: web.Request) -> tuple[uuid.UUID, uuid.UUID] | None:
    try:
        return uuid.UUID(request.match_info["tenantId"]), uuid.UUID(request.match_info["leadId"])
    except ValueError:
        return None


async def unsubscribe_page(request: web.Request) -> tuple[web.Response, str]:
    """GET shows a button only: link scanners and previews fetch URLs, people press buttons."""
    return web.Response(text=_CONFIRM, content_type="text/html"), "page"


async def unsubscribe(request: web.Request) -> tuple[web.Response, str]:
    """RFC 8058 one-click POST (or the page's button). The same answer whether or not the lead
    exists, so the URL reveals nothing."""
    ids = _ids(request)
    done = False
    if ids is not None:
        parts = await _parts(request)
        done = await parts.service.unsubscribe_lead(tenant_id=ids[0], lead_id=ids[1])
    return web.Response(text=_DONE, content_type="text/html"), "ok" if done else "unknown"


def add_signal_routes(
    app: web.Application, *, ingest_key: web.AppKey[Any], parts: SignalParts | None = None
) -> None:
    """Add the routes; their parts come from `app[ingest_key].settings` at start (created on
    first use), or `parts` as given (tests)."""
    if parts is not None:
        app[FIXED_PARTS] = parts
    else:

        async def resources(app: web.Application) -> AsyncIterator[None]:
            ingest = app[ingest_key]
            lazy = LazySignalParts(
                ingest.settings,
                engine=getattr(ingest, "engine", None),
                producer=getattr(ingest, "producer", None),
            )
            app[PARTS] = lazy
            yield
            await lazy.close()

        app.cleanup_ctx.append(resources)
    app.router.add_post("/webhooks/sendgrid/events", _guarded("sendgrid_events", sendgrid_events))
    app.router.add_post("/webhooks/twilio/status", _guarded("twilio_status", twilio_status))
    app.router.add_post("/webhooks/twilio/inbound", _guarded("twilio_inbound", twilio_inbound))
    app.router.add_get(
        "/unsubscribe/{tenantId}/{leadId}", _guarded("unsubscribe", unsubscribe_page)
    )
    app.router.add_post("/unsubscribe/{tenantId}/{leadId}", _guarded("unsubscribe", unsubscribe))
    app.router.add_get("/api/leads/{leadId}", _guarded("get_lead", get_lead))
    app.router.add_post("/api/leads/{leadId}/signals", _guarded("lead_signal", post_lead_signal))


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignalsError"}}},
    }


_FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
_TWIML = {"description": "TwiML", "content": {"application/xml": {"schema": {"type": "string"}}}}
_TWILIO_SIG = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "HMAC-SHA1 (Auth Token) of the public URL + sorted form parameters",
}
_TENANT_ID = {"name": "tenantId", "in": "path", "required": True, "schema": {"type": "string"}}
_HTML = {"description": "HTML page", "content": {"text/html": {"schema": {"type": "string"}}}}
_LEAD_ID = {"name": "leadId", "in": "path", "required": True, "schema": {"type": "string"}}

OPENAPI_COMPONENTS: dict[str, Any] = {
    "SignalsError": {
        "type": "object",
        "required": ["success", "reason"],
        "properties": {"success": {"const": False}, "reason": {"type": "string"}},
    }
}

#: OpenAPI 3.1 paths of these routes (merged into ingest's /openapi.json). The lead API takes
#: `Authorization: Bearer <the tenant's lead API token>`.
OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/sendgrid/events": {
        "post": {
            "summary": "SendGrid Signed Event Webhook",
            "description": (
                "A JSON array of SendGrid events, verified with the ECDSA public key "
                "(SENDGRID_WEBHOOK_PUBLIC_KEY) over timestamp + raw body. Events carrying our "
                "custom_args (command_id, lead_id, tenant_id) become ContactSignals; bounces, "
                "spam reports and unsubscribes suppress the address before the answer. "
                "Duplicates (same sg_event_id) are harmless."
            ),
            "parameters": [
                {
                    "name": SENDGRID_SIGNATURE_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": SENDGRID_TIMESTAMP_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
                },
            },
            "responses": {
                "200": {"description": "Processed; signals acknowledged by Kafka"},
                "400": _error("Not a JSON array of events"),
                "401": _error("Missing, forged, altered or stale signature, or no key configured"),
                "503": _error("Kafka/PostgreSQL unavailable; retry"),
            },
        }
    },
    "/webhooks/twilio/status": {
        "post": {
            "summary": "Twilio message status callback",
            "description": (
                "MessageStatus/ErrorCode → the touch point's delivery status in job_executions "
                "and delivered/undelivered/failed signals."
            ),
            "parameters": [_TWILIO_SIG],
            "requestBody": {"required": True, "content": _FORM},
            "responses": {
                "200": _TWIML,
                "400": _error("MessageSid or MessageStatus missing"),
                "401": _error("Missing or invalid signature, or no Auth Token configured"),
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
    "/webhooks/twilio/inbound": {
        "post": {
            "summary": "Twilio inbound SMS",
            "description": (
                "STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT → suppression "
                "(before the answer) and opted_out; START, UNSTOP, YES → opted back in; HELP, "
                "INFO → help text; anything else → replied."
            ),
            "parameters": [_TWILIO_SIG],
            "requestBody": {"required": True, "content": _FORM},
            "responses": {
                "200": _TWIML,
                "400": _error("MessageSid missing"),
                "401": _error("Missing or invalid signature, or no Auth Token configured"),
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
    "/unsubscribe/{tenantId}/{leadId}": {
        "get": {
            "summary": "Unsubscribe page (a button; GET changes nothing)",
            "parameters": [_TENANT_ID, _LEAD_ID],
            "responses": {"200": _HTML, "503": _error("PostgreSQL unavailable")},
        },
        "post": {
            "summary": "One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)",
            "description": (
                "Suppresses the lead's email address (before the answer) and emits an "
                "unsubscribed signal. Same answer for an unknown lead."
            ),
            "parameters": [_TENANT_ID, _LEAD_ID],
            "requestBody": {"required": False, "content": _FORM},
            "responses": {
                "200": _HTML,
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        },
    },
    "/api/leads/{leadId}": {
        "get": {
            "summary": "A lead for the chat service (Authorization: Bearer <lead API token>)",
            "description": (
                "First name, vehicle, services of interest, lifecycle state, the location with "
                "its hours and services, and the touch history. Another tenant's lead is 404."
            ),
            "parameters": [_LEAD_ID],
            "responses": {
                "200": {
                    "description": "The lead",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": _error("Missing or invalid bearer token"),
                "404": _error("No such lead for this tenant"),
                "503": _error("PostgreSQL unavailable"),
            },
        }
    },
    "/api/leads/{leadId}/signals": {
        "post": {
            "summary": "Report a chat/operator signal (Authorization: Bearer <lead API token>)",
            "parameters": [_LEAD_ID],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["kind"],
                            "properties": {
                                "kind": {
                                    "enum": sorted(k.value for k in CHAT_KINDS),
                                },
                                "eventId": {
                                    "type": "string",
                                    "description": "Idempotency id: same id, same signal_id",
                                },
                                "occurredAt": {"type": "string", "format": "date-time"},
                                "detail": {"type": "string", "maxLength": 500},
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": {"description": "Signal acknowledged by Kafka"},
                "400": _error("Invalid body or kind"),
                "401": _error("Missing or invalid bearer token"),
                "404": _error("No such lead for this tenant"),
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
}
