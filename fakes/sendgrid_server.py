"""A fake SendGrid v3 API on real HTTP, enough for the official `sendgrid` library:

- `POST /v3/mail/send`: Bearer key check (401), body validation (400 with SendGrid's error
  shape), then 202 with an `X-Message-Id` header and no body.
- `GET /v3/messages?query=…&limit=…`: the Email Activity API (a paid add-on in real life)
  answering queries on `unique_args['<key>']="…"`, `msg_id`, `to_email`, `subject`, `status`
  (terms joined by AND), so outbound can reconcile an ambiguous send by its command_id.
- the shared `/_admin` API of fakes/_recorder.py (records, faults).

Run: `leadctl simulate sendgrid --port 3011 [--api-key SG.x]`.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

import click
from aiohttp import web

from fakes._recorder import (
    STATE,
    FakeState,
    Fault,
    add_admin_routes,
    apply_fault,
    fast_loop,
    fault_options,
    state_from_options,
)

QUERY_TERM = re.compile(
    r"""(?P<field>unique_args\['(?P<arg>[^']+)'\]|msg_id|to_email|from_email|subject|status)
        \s*=\s*"(?P<value>[^"]*)\"""",
    re.VERBOSE,
)
ERRORS = {
    400: "invalid request",
    401: "authorization required",
    403: "access forbidden",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}
API_KEY = web.AppKey("api_key", str)


def _errors(status: int, message: str | None = None, field: str | None = None) -> web.Response:
    body = {"errors": [{"message": message or ERRORS.get(status, "error"), "field": field}]}
    return web.json_response(body, status=status)


def _authorized(request: web.Request) -> bool:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or not header[7:].strip():
        return False
    expected = request.app[API_KEY]
    return not expected or header[7:] == expected


def _validate(body: Any) -> tuple[str, str | None] | None:
    """None when the Mail Send body is acceptable, else (message, field)."""
    if not isinstance(body, dict):
        return "invalid request", None
    people = body.get("personalizations")
    if not isinstance(people, list) or not people:
        return "The personalizations field is required.", "personalizations"
    for p in people:
        to = p.get("to") if isinstance(p, dict) else None
        if (
            not isinstance(to, list)
            or not to
            or not all(isinstance(t, dict) and "@" in str(t.get("email", "")) for t in to)
        ):
            return "Each personalization requires a valid to address.", "personalizations.to"
    sender = body.get("from")
    if not isinstance(sender, dict) or "@" not in str(sender.get("email", "")):
        return "The from object must be provided.", "from"
    subjects = all(isinstance(p, dict) and p.get("subject") for p in people)
    if not body.get("subject") and not subjects:
        return "The subject is required.", "subject"
    if not body.get("template_id"):
        content = body.get("content")
        if not isinstance(content, list) or not content:
            return "Unless a valid template_id is provided, content is required.", "content"
    return None


async def mail_send(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        body = await request.json()
    except ValueError:
        body = None
    entry = state.record(request, body)
    if not _authorized(request):
        entry["status"] = 401
        return _errors(401)
    problem = _validate(body)
    if problem is not None:
        entry["status"] = 400
        return _errors(400, *problem)

    def create() -> dict[str, Any]:
        msg_id = secrets.token_urlsafe(16)[:22]
        message = {
            "id": msg_id,
            "msg_id": f"{msg_id}.filter0001p1las1-1-1-1.0",
            "to_email": body["personalizations"][0]["to"][0]["email"],
            "from_email": body["from"]["email"],
            "subject": body.get("subject") or body["personalizations"][0].get("subject"),
            "custom_args": dict(body.get("custom_args") or {})
            | dict(body["personalizations"][0].get("custom_args") or {}),
            "status": "delivered",
            "last_event_time": datetime.now(UTC).isoformat(timespec="seconds"),
            "body": body,
        }
        state.messages.append(message)
        return message

    def error(fault: Fault) -> web.Response:
        response = _errors(int(fault.status or 500))
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def success(message: dict[str, Any]) -> web.Response:
        return web.Response(status=202, headers={"X-Message-Id": message["id"]})

    return await apply_fault(state, state.next_fault(), create, error, success, entry)


def _matches(message: dict[str, Any], query: str) -> bool:
    terms = list(QUERY_TERM.finditer(query))
    if not terms:
        return True
    for term in terms:
        value = term["value"]
        if term["arg"] is not None:
            if str(message["custom_args"].get(term["arg"])) != value:
                return False
        elif term["field"] == "msg_id":
            if not message["msg_id"].startswith(value):
                return False
        elif str(message.get(term["field"])) != value:
            return False
    return True


async def activity(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.record(request, None, status=200)
    if not _authorized(request):
        return _errors(401)
    query = request.query.get("query", "")
    try:
        limit = max(1, min(1000, int(request.query.get("limit", "10"))))
    except ValueError:
        return _errors(400, "limit must be an integer", "limit")
    found = [m for m in reversed(state.messages) if _matches(m, query)][:limit]
    keys = ("from_email", "msg_id", "subject", "to_email", "status", "last_event_time")
    counts = {"opens_count": 0, "clicks_count": 0}
    return web.json_response({"messages": [{k: m[k] for k in keys} | counts for m in found]})


def create_app(*, api_key: str = "", state: FakeState | None = None) -> web.Application:
    app = web.Application(client_max_size=32 * 1024 * 1024)
    app[STATE] = state or FakeState()
    app[API_KEY] = api_key
    app.router.add_post("/v3/mail/send", mail_send)
    app.router.add_get("/v3/messages", activity)
    add_admin_routes(app)
    return app


@click.command("sendgrid")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3011, show_default=True, type=int)
@click.option("--api-key", default="", help="Accept only this key (default: any Bearer key).")
@fault_options
def main(host: str, port: int, api_key: str, **faults: Any) -> None:
    """Fake SendGrid v3 API (mail send + Email Activity) recording every request.

    Requests are readable at GET /__requests (or /_admin/requests); faults can also be set at
    run time with POST /_admin/faults.
    """
    click.echo(f"fake SendGrid on http://{host}:{port} (requests: /__requests)")
    app = create_app(api_key=api_key, state=state_from_options(**faults))
    web.run_app(app, host=host, port=port, print=None, access_log=None, loop=fast_loop())
