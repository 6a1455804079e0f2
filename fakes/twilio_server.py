"""A fake Twilio Programmable Messaging API (2010-04-01) on real HTTP, enough for the official
`twilio` library:

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: HTTP Basic auth (20003), form
  validation, 400 21211 for a `To` that is not E.164, 400 21610 for numbers that opted out
  (`POST /_admin/optouts {"numbers": [...]}`), then 201 with the Message resource JSON.
- `GET …/Messages.json` with `To`, `From`, `DateSent`, `DateSent<`, `DateSent>` filters and
  paging (newest first), and `GET …/Messages/{Sid}.json`: what reconciliation needs.
- the shared `/_admin` API of fakes/_recorder.py (records, faults).

Run: `leadctl simulate twilio --port 3012 [--account-sid AC… --auth-token …]`.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

import click
from aiohttp import BasicAuth, web

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

E164 = re.compile(r"^\+[1-9]\d{7,14}$")
API = "/2010-04-01/Accounts/{sid}"
CREDENTIALS = web.AppKey("credentials", tuple)
OPTOUTS: web.AppKey[set[str]] = web.AppKey("optouts")


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
    )


def _authorized(request: web.Request) -> bool:
    try:
        auth = BasicAuth.decode(request.headers.get("Authorization", ""))
    except ValueError:
        return False
    sid, token = request.app[CREDENTIALS]
    if auth.login != request.match_info["sid"]:
        return False
    return (not sid or auth.login == sid) and (not token or auth.password == token)


def _rfc2822(at: datetime | None) -> str | None:
    return format_datetime(at, usegmt=True) if at else None


def _resource(message: dict[str, Any], *, for_list: bool) -> dict[str, Any]:
    sid, account = message["sid"], message["account_sid"]
    return {
        "sid": sid,
        "account_sid": account,
        "messaging_service_sid": message["messaging_service_sid"],
        "to": message["to"],
        "from": message["from"],
        "body": message["body"],
        "status": "sent" if for_list else message["status"],
        "num_segments": str(max(1, -(-len(message["body"]) // 160))),
        "num_media": "0",
        "direction": "outbound-api",
        "api_version": "2010-04-01",
        "price": None,
        "price_unit": "USD",
        "error_code": None,
        "error_message": None,
        "date_created": _rfc2822(message["created"]),
        "date_updated": _rfc2822(message["created"]),
        "date_sent": _rfc2822(message["created"]) if for_list else None,
        "uri": f"{API.format(sid=account)}/Messages/{sid}.json",
        "subresource_uris": {"media": f"{API.format(sid=account)}/Messages/{sid}/Media.json"},
    }


async def create_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    form = dict(await request.post())
    entry = state.record(request, {k: str(v) for k, v in form.items()})
    if not _authorized(request):
        entry["status"] = 401
        return _error(401, 20003, "Authenticate")
    to, sender, service = form.get("To"), form.get("From"), form.get("MessagingServiceSid")
    problem: tuple[int, str] | None = None
    if not to:
        problem = (21604, "A 'To' phone number is required.")
    elif not sender and not service:
        problem = (21603, "A 'From' phone number is required.")
    elif not form.get("Body") and not form.get("MediaUrl"):
        problem = (21602, "Message body is required.")
    elif not E164.match(str(to)):
        problem = (21211, f"The 'To' number {to!s} is not a valid phone number.")
    elif str(to) in request.app[OPTOUTS]:
        problem = (21610, "Attempt to send to unsubscribed recipient")
    elif "ValidityPeriod" in form and not 1 <= int(str(form["ValidityPeriod"])) <= 36000:
        problem = (21624, "Invalid validity period value")
    if problem is not None:
        entry["status"] = 400
        return _error(400, *problem)
    account = request.match_info["sid"]

    def create() -> dict[str, Any]:
        message = {
            "id": "SM" + secrets.token_hex(16),
            "account_sid": account,
            "to": str(to),
            "from": str(sender) if sender else None,
            "messaging_service_sid": str(service) if service else None,
            "body": str(form.get("Body", "")),
            "status": "accepted" if service else "queued",
            "created": datetime.now(UTC).replace(microsecond=0),
            "form": entry["payload"],
        }
        message["sid"] = message["id"]
        state.messages.append(message)
        return message

    def error(fault: Fault) -> web.Response:
        status = int(fault.status or 500)
        code = fault.code or {429: 20429, 503: 20503}.get(status, 20500)
        if status == 429:
            text = "Too Many Requests"
        elif status < 500:  # as Twilio words its refusals: quoting the number (e.g. 21408)
            text = f"Permission to send an SMS has not been enabled for the 'To' number: {to}."
        else:
            text = "Internal error"
        response = _error(status, code, text)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(fault.retry_after)
        return response

    def success(message: dict[str, Any]) -> web.Response:
        return web.json_response(_resource(message, for_list=False), status=201)

    return await apply_fault(state, state.next_fault(), create, error, success, entry)


def _when(value: str) -> datetime | date:
    value = value.strip()
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _compare(sent: datetime, bound: datetime | date) -> tuple[Any, Any]:
    return (sent.date(), bound) if not isinstance(bound, datetime) else (sent, bound)


async def list_messages(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.record(request, None, status=200)
    if not _authorized(request):
        return _error(401, 20003, "Authenticate")
    q = request.query
    account = request.match_info["sid"]
    try:
        filters = {k: _when(q[k]) for k in ("DateSent", "DateSent<", "DateSent>") if q.get(k)}
        size = max(1, min(1000, int(q.get("PageSize", "50"))))
        page = max(0, int(q.get("Page", "0")))
    except ValueError as exc:
        return _error(400, 20001, f"Invalid parameter: {exc}")
    found = []
    for m in reversed(state.messages):  # newest first, like Twilio
        if m["account_sid"] != account:
            continue
        if q.get("To") and m["to"] != q["To"]:
            continue
        if q.get("From") and m["from"] != q["From"]:
            continue
        sent = m["created"]
        if "DateSent" in filters and _compare(sent, filters["DateSent"])[0] != filters["DateSent"]:
            continue
        if "DateSent>" in filters:
            a, b = _compare(sent, filters["DateSent>"])
            if a < b:
                continue
        if "DateSent<" in filters:
            a, b = _compare(sent, filters["DateSent<"])
            if a > b:
                continue
        found.append(m)
    chunk = found[page * size : (page + 1) * size]
    base = f"{API.format(sid=account)}/Messages.json"
    query = "&".join(f"{k}={v}" for k, v in q.items() if k not in ("Page", "PageToken"))
    more = (page + 1) * size < len(found)
    return web.json_response(
        {
            "messages": [_resource(m, for_list=True) for m in chunk],
            "page": page,
            "page_size": size,
            "start": page * size,
            "end": page * size + max(0, len(chunk) - 1),
            "uri": f"{base}?{query}&Page={page}",
            "first_page_uri": f"{base}?{query}&Page=0",
            "previous_page_uri": f"{base}?{query}&Page={page - 1}" if page else None,
            "next_page_uri": f"{base}?{query}&Page={page + 1}&PageToken=PA{page + 1}"
            if more
            else None,
        }
    )


async def get_message(request: web.Request) -> web.Response:
    state = request.app[STATE]
    if not _authorized(request):
        return _error(401, 20003, "Authenticate")
    for m in state.messages:
        if m["sid"] == request.match_info["msid"]:
            return web.json_response(_resource(m, for_list=True))
    return _error(404, 20404, "The requested resource was not found")


async def optouts(request: web.Request) -> web.Response:
    numbers = (await request.json()).get("numbers", [])
    known: set[str] = request.app[OPTOUTS]
    known.update(str(n) for n in numbers)
    return web.json_response({"optouts": sorted(known)})


def create_app(
    *, account_sid: str = "", auth_token: str = "", state: FakeState | None = None
) -> web.Application:
    app = web.Application()
    app[STATE] = state or FakeState()
    app[CREDENTIALS] = (account_sid, auth_token)
    app[OPTOUTS] = set[str]()
    app.router.add_post(API.format(sid="{sid}") + "/Messages.json", create_message)
    app.router.add_get(API.format(sid="{sid}") + "/Messages.json", list_messages)
    app.router.add_get(API.format(sid="{sid}") + "/Messages/{msid}.json", get_message)
    app.router.add_post("/_admin/optouts", optouts)
    add_admin_routes(app)
    return app


@click.command("twilio")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3012, show_default=True, type=int)
@click.option("--account-sid", default="", help="Accept only this account (default: any).")
@click.option("--auth-token", default="", help="Accept only this token (default: any).")
@fault_options
def main(host: str, port: int, account_sid: str, auth_token: str, **faults: Any) -> None:
    """Fake Twilio Messaging API recording every request.

    Requests are readable at GET /__requests (or /_admin/requests); faults can also be set at
    run time with POST /_admin/faults.
    """
    click.echo(f"fake Twilio on http://{host}:{port} (requests: /__requests)")
    web.run_app(
        create_app(
            account_sid=account_sid, auth_token=auth_token, state=state_from_options(**faults)
        ),
        host=host,
        port=port,
        print=None,
        access_log=None,
        loop=fast_loop(),
    )
