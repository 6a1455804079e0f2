"""The lead API of the chat service, added to the ingest app by `create_app`.

Routes (`Authorization: Bearer <the tenant's lead API token>`; another tenant's lead is 404):
- `GET /api/leads/{leadId}`: a lead for the chat service.
- `POST /api/leads/{leadId}/signals`: chat_opened, appointment_booked, qualified, lost.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schemas import bounds
from schemas.events import SignalKind
from services.ingest.bootstrap import SignalParts
from services.ingest.domain.bearer import bearer_token
from services.ingest.entrypoints.answers import (
    SIGNALS,
    counted,
    json_answer,
    refused,
    unauthorized,
)
from services.ingest.entrypoints.signal_api_docs import LEAD_API_PATHS as OPENAPI_PATHS
from services.ingest.entrypoints.signal_api_docs import SIGNAL_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.service_layer.contact_signals import CHAT_KINDS

__all__ = ["OPENAPI_COMPONENTS", "OPENAPI_PATHS", "add_lead_api_routes"]


class ChatSignalRequest(BaseModel):
    """Body of `POST /api/leads/{leadId}/signals`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")
    kind: SignalKind
    event_id: str | None = Field(default=None, alias="eventId", max_length=200)
    occurred_at: datetime | None = Field(default=None, alias="occurredAt")
    detail: str | None = Field(default=None, max_length=bounds.SIGNAL_DETAIL)


async def _caller(
    request: web.Request, parts: SignalParts
) -> tuple[uuid.UUID | None, uuid.UUID | None]:
    """The bearer token's tenant and the path's lead id (None: missing or invalid)."""
    try:
        lead_id: uuid.UUID | None = uuid.UUID(request.match_info["leadId"])
    except ValueError:
        lead_id = None
    token = bearer_token(request.headers.get("Authorization"))
    if token is None:
        return None, lead_id
    return await parts.leads.tenant_for_token(token), lead_id


def _unauthorized(route: str) -> web.Response:
    return unauthorized(
        route,
        "missing or unknown bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="lead-api"'},
    )


def _not_found() -> web.Response:
    return refused("lead not found", 404)


async def get_lead(request: web.Request) -> tuple[web.Response, str]:
    parts = request.app[SIGNALS]
    tenant_id, lead_id = await _caller(request, parts)
    if tenant_id is None:
        return _unauthorized("get_lead"), "unauthorized"
    view = None
    if lead_id is not None:
        view = await parts.leads.lead_view(tenant_id=tenant_id, lead_id=lead_id)
    if view is None:
        return _not_found(), "not_found"
    return web.Response(text=view, content_type="application/json"), "ok"


async def post_lead_signal(request: web.Request) -> tuple[web.Response, str]:
    parts = request.app[SIGNALS]
    tenant_id, lead_id = await _caller(request, parts)
    if tenant_id is None:
        return _unauthorized("lead_signal"), "unauthorized"
    if lead_id is None or not await parts.leads.lead_exists(tenant_id=tenant_id, lead_id=lead_id):
        return _not_found(), "not_found"
    try:
        body = ChatSignalRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return refused(reason, 400), "bad_request"
    if body.kind not in CHAT_KINDS:
        allowed = ", ".join(sorted(k.value for k in CHAT_KINDS))
        return refused(f"kind must be one of: {allowed}", 400), "bad_request"
    if body.occurred_at is not None and body.occurred_at.tzinfo is None:
        return refused("occurredAt needs a timezone", 400), "bad_request"
    signal = await parts.service.chat_signal(
        tenant_id=tenant_id,
        lead_id=lead_id,
        kind=body.kind,
        event_id=body.event_id,
        occurred_at=body.occurred_at,
        detail=body.detail,
    )
    return json_answer({"success": True, "signalId": signal.signal_id}, status=202), "ok"


def add_lead_api_routes(app: web.Application) -> None:
    """The routes; their parts are `app[SIGNALS]`."""
    app.router.add_get("/api/leads/{leadId}", counted("get_lead", get_lead))
    app.router.add_post("/api/leads/{leadId}/signals", counted("lead_signal", post_lead_signal))
