"""The dashboard's lead routes (under `/dashboard`, admin listener only), each for a signed-in
operator (session or operator API token) and only for leads of locations it sees:

- `GET api/leads?q=&page=`: search (`service_layer.lead_desk`);
- `GET api/leads/{lead_id}`: the lead's page (row, touch points, timeline from Kafka);
- `POST api/leads/{lead_id}/actions` (JSON `{"action": stop|resume|lost|suppress, "reason":
  "…"}`): refused when the browser says it comes from another site; 202 once Kafka has the
  signal(s).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from aiohttp import web

from services.common.domain.operators import Operator
from services.ingest.entrypoints.dashboard import (
    SECURITY_HEADERS,
    OperatorGate,
    _error,
    _same_site,
    signed_in,
)
from services.ingest.errors import RequestRejected
from services.ingest.service_layer.lead_desk import LeadDesk


def _lead_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["lead_id"])
    except ValueError:
        raise RequestRejected("lead id must be a UUID") from None


def add_lead_routes(app: web.Application, desk: Callable[[], LeadDesk], gate: OperatorGate) -> None:
    async def search(request: web.Request, viewer: Operator) -> web.StreamResponse:
        raw_page = request.query.get("page", "0")
        if not raw_page.isdigit() or len(raw_page) > 4:
            raise RequestRejected("page must be a small non-negative integer")
        found = await desk().search(viewer, request.query.get("q", ""), int(raw_page))
        return web.json_response(found, headers=SECURITY_HEADERS)

    async def show(request: web.Request, viewer: Operator) -> web.StreamResponse:
        page = await desk().show(viewer, _lead_id(request))
        return web.json_response(
            page, headers=SECURITY_HEADERS, dumps=lambda o: json.dumps(o, default=str)
        )

    async def act(request: web.Request, viewer: Operator) -> web.StreamResponse:
        if not _same_site(request, tls=gate.secure(request)):
            return _error("refused: the request came from another site", 403)
        if request.content_type != "application/json":
            raise RequestRejected('send JSON: {"action": …, "reason": …}')
        try:
            body = json.loads(await request.read())
        except ValueError:
            raise RequestRejected("body is not valid JSON") from None
        if not isinstance(body, dict):
            raise RequestRejected("body must be an object")
        action, reason = body.get("action"), body.get("reason")
        if not isinstance(action, str) or not isinstance(reason, str):
            raise RequestRejected("action and reason must be text")
        done = await desk().act(viewer, _lead_id(request), action, reason)
        return web.json_response(done, status=202, headers=SECURITY_HEADERS)

    app.router.add_get("/api/leads", signed_in(gate, search))
    app.router.add_get("/api/leads/{lead_id}", signed_in(gate, show))
    app.router.add_post("/api/leads/{lead_id}/actions", signed_in(gate, act))
