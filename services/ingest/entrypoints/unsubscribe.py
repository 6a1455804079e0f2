"""The emails' unsubscribe link (RFC 8058 one-click), added to the ingest app by `create_app`.

Routes:
- `GET /u/{token}`: a page with a button; changes nothing (link scanners and previews fetch
  URLs, people press buttons). It says what the unsubscribe will stop.
- `POST /u/{token}`: the button, or a mail client's one-click POST
  (`List-Unsubscribe=One-Click`): suppresses the address the link was sent to (before the
  answer) and emits an unsubscribed signal; the page says what stops.
- `GET|POST /u/`: no token; `GET|POST /unsubscribe/{tenantId}/{leadId}`: the old unsigned
  form, 410 Gone. Neither changes anything.

The token is signed (LINK_SIGNING_KEYS) and binds the tenant, the lead, the channel and the
address (`services.common.domain.signed_links`): a missing, altered, truncated or foreign one
changes nothing and the page says so (400). UNSUBSCRIBE_SCOPE says what an unsubscribe stops:
`company` (the default), the location and the other locations of its Shopmonkey company (one
business, one customer list; the outbound gate applies a location's suppression to all of
them), or `brand`, every location.
"""

from __future__ import annotations

import html
import uuid

from aiohttp import web

from services.common.domain.signed_links import read_unsubscribe_token
from services.ingest.bootstrap import SignalParts
from services.ingest.entrypoints.answers import SIGNALS, counted
from services.ingest.entrypoints.signal_api_docs import SIGNAL_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.entrypoints.signal_api_docs import UNSUBSCRIBE_PATHS as OPENAPI_PATHS

__all__ = ["OPENAPI_COMPONENTS", "OPENAPI_PATHS", "add_unsubscribe_routes"]

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex",
}
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 32rem; margin: 3rem auto;"><h1>{title}</h1>
{body}</body></html>"""
_INVALID = (
    "<p>This unsubscribe link is not valid: it is incomplete, was changed, or is not one of "
    "ours. <strong>Nothing was changed.</strong></p><p>Use the link in the email you received, "
    "or reply to it asking to be removed.</p>"
)
_GONE = (
    "<p>This unsubscribe link has expired. <strong>Nothing was changed.</strong></p>"
    "<p>Use the unsubscribe link in a more recent email from us, or reply to it asking to be "
    "removed.</p>"
)
_UNKNOWN = (
    "<p>We could not find the address this link was sent to. <strong>Nothing was "
    "changed.</strong></p><p>Reply to the email asking to be removed.</p>"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    return web.Response(
        text=_PAGE.format(title=title, body=body),
        content_type="text/html",
        status=status,
        headers=HEADERS,
    )


async def _scope(parts: SignalParts, tenant_id: uuid.UUID) -> str:
    """What an unsubscribe stops, in words (HTML-escaped)."""
    if parts.unsubscribe_brand_wide:
        return "emails from <strong>every one of our locations</strong>"
    company = await parts.tenants.company_of(tenant_id)
    if company is None:
        return "emails from <strong>this location</strong>"
    location = company.by_id.get(tenant_id)
    name = html.escape(location.name if location is not None else company.name)
    others = len(company.tenants) - 1
    if others <= 0:
        return f"emails from <strong>{name}</strong>"
    plural = "location" if others == 1 else "locations"
    return (
        f"emails from <strong>{name}</strong> and the {others} other {plural} of "
        f"<strong>{html.escape(company.name)}</strong>"
    )


async def unsubscribe_page(request: web.Request) -> tuple[web.Response, str]:
    """GET: the confirmation button only."""
    parts = request.app[SIGNALS]
    claim = read_unsubscribe_token(parts.links, request.match_info["token"])
    if claim is None:
        return _page("Unsubscribe", _INVALID, 400), "invalid"
    scope = await _scope(parts, claim.tenant_id)
    body = (
        f"<p>Stop receiving {scope}?</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page("Unsubscribe", body), "page"


async def unsubscribe(request: web.Request) -> tuple[web.Response, str]:
    """POST: the button or RFC 8058 one-click."""
    parts = request.app[SIGNALS]
    claim = read_unsubscribe_token(parts.links, request.match_info["token"])
    if claim is None:
        return _page("Unsubscribe", _INVALID, 400), "invalid"
    done = await parts.service.unsubscribe(claim, brand_wide=parts.unsubscribe_brand_wide)
    if not done:
        return _page("Unsubscribe", _UNKNOWN, 404), "unknown"
    scope = await _scope(parts, claim.tenant_id)
    body = f"<p>You will not receive {scope} any more.</p>"
    return _page("You are unsubscribed", body), "ok"


async def no_token(request: web.Request) -> tuple[web.Response, str]:
    return _page("Unsubscribe", _INVALID, 400), "invalid"


async def expired(request: web.Request) -> tuple[web.Response, str]:
    """The old unsigned `/unsubscribe/<tenant>/<lead>` links: anyone could make one."""
    return _page("Unsubscribe", _GONE, 410), "gone"


def add_unsubscribe_routes(app: web.Application) -> None:
    """The routes; their parts are `app[SIGNALS]`."""
    # no credentials asked: never throttled, so a customer who shares an address with a
    # failing caller can still unsubscribe
    routes = (
        ("/u/{token}", unsubscribe_page, unsubscribe),
        ("/u/", no_token, no_token),
        ("/unsubscribe/{tenantId}/{leadId}", expired, expired),
    )
    for path, on_get, on_post in routes:
        app.router.add_get(path, counted("unsubscribe", on_get, throttled=False))
        app.router.add_post(path, counted("unsubscribe", on_post, throttled=False))
