"""The dashboard sub-application (admin listener only): a sign-in page, one HTML page, its script
and style sheet, and the JSON the page polls (`api/summary`), every answer with a strict CSP.

Mounted by the admin app at `/dashboard`. Who may see what:
- `sign-in` (GET: the form; POST: email + password) sets the session cookie: signed
  (LINK_SIGNING_KEYS, purpose `operator-session`), HttpOnly, SameSite=Strict, Path=/, Secure
  (and named `__Host-…`) when the listener is reached over TLS. `sign-out` (POST) clears it.
  Both POSTs are refused when the browser says they come from another site.
- The page (`/dashboard/`) needs a session (else 303 to `sign-in`); `api/summary` takes the
  session or `Authorization: Bearer <operator API token>` (else 401), and answers only what
  the operator may see (`service_layer.dashboard`): another location's id is a 404.
- The script and style sheet carry no data and need no session (the sign-in page uses them).

The figures come from the `Dashboard` use case, whose webhook history a background task
samples every few seconds while the application runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import math
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources

from aiohttp import web

from services.common.domain.operators import Operator
from services.common.masking import mask_email
from services.ingest.entrypoints.dashboard_api_docs import OPENAPI_COMPONENTS as OPENAPI_COMPONENTS
from services.ingest.entrypoints.dashboard_api_docs import OPENAPI_PATHS as OPENAPI_PATHS
from services.ingest.errors import (
    PublishUnavailable,
    ReadModelUnavailable,
    RequestRejected,
    TooManyAttempts,
    Unavailable,
)
from services.ingest.service_layer.dashboard import Dashboard
from services.ingest.service_layer.lead_desk import LeadDesk
from services.ingest.service_layer.operator_access import OperatorAccess

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC = {
    "index.html": "text/html",
    "sign-in.html": "text/html",
    "dashboard.js": "application/javascript",
    "leads.js": "application/javascript",
    "dashboard.css": "text/css",
}
COOKIE, SECURE_COOKIE = "lo_operator", "__Host-lo_operator"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes:
    files = resources.files("services.ingest.entrypoints")
    return files.joinpath("dashboard_static", name).read_bytes()


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"error": message}, status=status, headers={**SECURITY_HEADERS, **(headers or {})}
    )


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={**SECURITY_HEADERS, "Location": location})


def _parse_tenant(raw: str) -> uuid.UUID | None:
    if raw in ("", "all"):
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise RequestRejected("tenant must be a UUID or all") from None


def _parse_window(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise RequestRejected("window must be minutes (an integer)") from None


def _same_site(request: web.Request, *, tls: bool) -> bool:
    """False when the browser says the request comes from another site (login CSRF): by
    `Sec-Fetch-Site` (every current browser sends it), else by `Origin` (a client that sends
    neither, e.g. curl, is no browser an attacker's page can drive)."""
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("Origin")
    scheme = "https" if tls else request.scheme
    return origin is None or origin == f"{scheme}://{request.host}"


class OperatorGate:
    """Who is asking: the session cookie's operator or the bearer token's."""

    def __init__(self, access: Callable[[], OperatorAccess], *, tls: bool) -> None:
        self._access = access
        self._tls = tls

    def secure(self, request: web.Request) -> bool:
        return self._tls or request.secure

    def cookie_name(self, request: web.Request) -> str:
        return SECURE_COOKIE if self.secure(request) else COOKIE

    async def from_session(self, request: web.Request) -> Operator | None:
        token = request.cookies.get(self.cookie_name(request))
        return await self._access().session(token) if token else None

    async def from_request(self, request: web.Request) -> Operator | None:
        """The session's operator, else the bearer token's (TooManyAttempts propagates)."""
        operator = await self.from_session(request)
        if operator is not None:
            return operator
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return await self._access().bearer(token.strip(), address=request.remote or "?")

    def set_session(
        self, response: web.StreamResponse, request: web.Request, token: str, max_age: int
    ) -> None:
        response.set_cookie(
            self.cookie_name(request),
            token,
            max_age=max_age,
            path="/",
            httponly=True,
            secure=self.secure(request),
            samesite="Strict",
        )

    def clear_session(self, response: web.StreamResponse, request: web.Request) -> None:
        response.del_cookie(self.cookie_name(request), path="/")


def _sign_in_page(message: str | None = None, *, status: int = 200) -> web.Response:
    text = _static("sign-in.html").decode()
    if message:
        text = text.replace(
            "<!--message-->",
            f'<p class="message" role="alert" data-testid="sign-in-message">'
            f"{html.escape(message)}</p>",
        )
    return web.Response(
        text=text, content_type="text/html", status=status, headers=SECURITY_HEADERS
    )


def _sign_in_handlers(
    access: Callable[[], OperatorAccess], gate: OperatorGate
) -> tuple[Handler, Handler, Handler]:
    async def page(request: web.Request) -> web.StreamResponse:
        return _sign_in_page()

    async def sign_in(request: web.Request) -> web.StreamResponse:
        if not _same_site(request, tls=gate.secure(request)):
            return _sign_in_page(
                "Sign-in refused: the form was sent from another site.", status=403
            )
        try:
            form = await request.post()
        except (ValueError, LookupError):  # undecodable body or charset: no 5xx from outside
            return _sign_in_page("The form could not be read.", status=400)
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        try:
            session = await access().sign_in(email, password, address=request.remote or "?")
        except TooManyAttempts as exc:
            refused = _sign_in_page("Too many failed sign-ins: try again later.", status=429)
            refused.headers["Retry-After"] = str(math.ceil(exc.retry_after))
            return refused
        except RequestRejected:
            return _sign_in_page("Wrong email or password.", status=401)
        except Unavailable as exc:
            log.warning("operator sign-in unavailable: %s", exc.reason)
            return _sign_in_page("The database does not answer: try again shortly.", status=503)
        response = _see_other("./")
        gate.set_session(response, request, session.token, session.max_age)
        return response

    async def sign_out(request: web.Request) -> web.StreamResponse:
        if not _same_site(request, tls=gate.secure(request)):
            return _error("refused: the request came from another site", 403)
        response = _see_other("sign-in")
        gate.clear_session(response, request)
        return response

    return page, sign_in, sign_out


Route = Callable[[web.Request, Operator], Awaitable[web.StreamResponse]]


def signed_in(gate: OperatorGate, route: Route) -> Handler:
    """`route` for the request's operator (session or bearer token, else 401); refusals as
    JSON with their status, a database that does not answer a 503."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            viewer = await gate.from_request(request)
            if viewer is None:
                return _error(
                    "sign in, or send Authorization: Bearer <operator API token>",
                    401,
                    {"WWW-Authenticate": 'Bearer realm="dashboard"'},
                )
            return await route(request, viewer)
        except TooManyAttempts as exc:
            return _error(exc.reason, 429, {"Retry-After": str(math.ceil(exc.retry_after))})
        except RequestRejected as exc:
            return _error(exc.reason, exc.status)
        except PublishUnavailable as exc:
            log.warning("dashboard %s: Kafka unavailable: %s", request.path, exc.reason)
            return _error("Kafka unavailable, try again", 503, {"Retry-After": "5"})
        except (ReadModelUnavailable, Unavailable) as exc:
            log.warning("dashboard %s unavailable: %s", request.path, exc.reason)
            return _error("database unavailable", 503)

    return handler


def _summary_handler(dashboard: Callable[[], Dashboard], gate: OperatorGate) -> Handler:
    async def _summary(request: web.Request, viewer: Operator) -> web.StreamResponse:
        tenant = _parse_tenant(request.query.get("tenant", "all"))
        minutes = _parse_window(request.query.get("window", "60"))
        payload = await dashboard().summary(viewer, tenant, minutes)
        me = {"email": mask_email(viewer.email), "role": viewer.role}
        return web.json_response({**payload, "viewer": me}, headers=SECURITY_HEADERS)

    return signed_in(gate, _summary)


def _file_handler(name: str, body: bytes) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(body=body, content_type=STATIC[name], headers=SECURITY_HEADERS)

    return handler


def _index_handler(gate: OperatorGate) -> Handler:
    body = _static("index.html")

    async def index(request: web.Request) -> web.StreamResponse:
        if not request.path.endswith("/"):
            raise web.HTTPFound(request.path + "/")
        try:
            operator = await gate.from_session(request)
        except Unavailable:
            return _error("database unavailable", 503)
        if operator is None:
            return _see_other("sign-in")
        return web.Response(body=body, content_type="text/html", headers=SECURITY_HEADERS)

    return index


def create_dashboard_app(
    dashboard: Callable[[], Dashboard],
    access: Callable[[], OperatorAccess],
    *,
    tls: bool = False,
    sample_seconds: float = 5.0,
    desk: Callable[[], LeadDesk] | None = None,
) -> web.Application:
    """The `/dashboard` sub-application.

    `dashboard` and `access` give the use cases (built by `bootstrap.build_ingest`) once the
    application has started. `tls`: the listener is reached over HTTPS (Secure cookies even
    when a proxy in front speaks plain HTTP to it). The webhook history is sampled every
    `sample_seconds` while the app runs. `desk`: the leads' search, pages and actions
    (`entrypoints.dashboard_leads`).
    """
    app = web.Application()
    gate = OperatorGate(access, tls=tls)

    async def sampler(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                dashboard().sample()
                await asyncio.sleep(sample_seconds)

        task = asyncio.create_task(loop(), name="dashboard-webhook-sampler")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sampler)
    index = _index_handler(gate)
    app.router.add_get("", index)
    app.router.add_get("/", index)
    page, sign_in, sign_out = _sign_in_handlers(access, gate)
    app.router.add_get("/sign-in", page)
    app.router.add_post("/sign-in", sign_in)
    app.router.add_post("/sign-out", sign_out)
    for name in ("dashboard.js", "leads.js", "dashboard.css"):
        app.router.add_get(f"/{name}", _file_handler(name, _static(name)))
    app.router.add_get("/api/summary", _summary_handler(dashboard, gate))
    if desk is not None:
        from services.ingest.entrypoints.dashboard_leads import add_lead_routes

        add_lead_routes(app, desk, gate)
    return app
