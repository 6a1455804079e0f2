"""The emails' one-click unsubscribe (RFC 8058), added to the ingest app by `create_app`.

Routes: `GET|POST /unsubscribe/{tenantId}/{leadId}`. GET shows a button and changes nothing;
POST suppresses the lead's email address (before the answer) and emits an unsubscribed signal.
"""

from __future__ import annotations

import uuid

from aiohttp import web

from services.ingest.entrypoints.answers import SIGNALS, counted
from services.ingest.entrypoints.signal_api_docs import SIGNAL_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.entrypoints.signal_api_docs import UNSUBSCRIBE_PATHS as OPENAPI_PATHS

__all__ = ["OPENAPI_COMPONENTS", "OPENAPI_PATHS", "add_unsubscribe_routes"]

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
        service = request.app[SIGNALS].service
        done = await service.unsubscribe_lead(tenant_id=ids[0], lead_id=ids[1])
    return web.Response(text=_DONE, content_type="text/html"), "ok" if done else "unknown"


def add_unsubscribe_routes(app: web.Application) -> None:
    """The routes; their parts are `app[SIGNALS]`."""
    page = counted("unsubscribe", unsubscribe_page, throttled=False)
    app.router.add_get("/unsubscribe/{tenantId}/{leadId}", page)
    app.router.add_post(
        "/unsubscribe/{tenantId}/{leadId}", counted("unsubscribe", unsubscribe, throttled=False)
    )
