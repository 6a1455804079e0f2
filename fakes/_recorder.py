"""What the fake SendGrid and Twilio servers share: a record of every request, injectable
faults (status codes, Retry-After, delays, "processed but answered 5xx"), and the `/_admin`
HTTP endpoints that let tests in other processes read and reset both.

Admin API (JSON):
- `GET /_admin/requests` (alias `GET /__requests`) → `{"requests": [...]}`: every request,
  faults included, with `accepted` true when it created a message; `GET /_admin/messages`
  → the messages created.
- `DELETE /_admin/requests` clears requests and messages.
- `POST /_admin/faults` with any of
    `{"scripted": [{"status": 429, "times": 3, "retry_after": 1, "processed": false,
                    "delay": 0, "code": 20429}],
      "storm": {"rate": 0.3, "seed": 1, "faults": [{"status": 500, "processed": true}]},
      "latency": 0.05}`
  `status` null means "answer normally" (useful with `delay` to cause client timeouts);
  `processed` creates the message before answering with the fault. `DELETE /_admin/faults`.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import random
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
import uvloop
from aiohttp import web

#: Every this many recorded requests, what the fake holds is frozen out of the collector's
#: reach: a full collection walking thousands of recorded payloads stalled the fake for ~30 ms
#: in the middle of a latency benchmark's load.
FREEZE_EVERY = 500


@dataclass(frozen=True, slots=True)
class Fault:
    status: int | None = None
    retry_after: float | None = None
    processed: bool = False
    delay: float = 0.0
    code: int | None = None

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Fault:
        return cls(
            status=raw.get("status"),
            retry_after=raw.get("retry_after"),
            processed=bool(raw.get("processed", False)),
            delay=float(raw.get("delay", 0.0)),
            code=raw.get("code"),
        )


@dataclass
class FakeState:
    """Requests, messages and the fault plan of one fake server."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    scripted: deque[Fault] = field(default_factory=deque)
    storm_rate: float = 0.0
    storm_faults: list[Fault] = field(default_factory=list)
    latency: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def next_fault(self) -> Fault | None:
        if self.scripted:
            return self.scripted.popleft()
        if self.storm_rate and self.storm_faults and self.rng.random() < self.storm_rate:
            return self.rng.choice(self.storm_faults)
        return None

    def configure(self, body: dict[str, Any]) -> None:
        for raw in body.get("scripted", []):
            for _ in range(int(raw.get("times", 1))):
                self.scripted.append(Fault.of(raw))
        storm = body.get("storm")
        if storm is not None:
            self.storm_rate = float(storm.get("rate", 0.0))
            self.storm_faults = [Fault.of(f) for f in storm.get("faults", [])]
            self.rng = random.Random(storm.get("seed"))
        if "latency" in body:
            self.latency = float(body["latency"])

    def reset_faults(self) -> None:
        self.scripted.clear()
        self.storm_rate, self.storm_faults, self.latency = 0.0, [], 0.0

    def record(self, request: web.Request, payload: Any, **outcome: Any) -> dict[str, Any]:
        entry = {
            "seq": next(self.seq),
            "at": datetime.now(UTC).isoformat(),
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "headers": {k: v for k, v in request.headers.items() if k.lower() != "authorization"},
            "payload": payload,
            "accepted": False,
            "status": None,
            "message_id": None,
        } | outcome
        self.requests.append(entry)
        if len(self.requests) % FREEZE_EVERY == 0:
            gc.freeze()  # the record only grows: no full collection walks it again
        return entry


STATE = web.AppKey("fake_state", FakeState)


def add_admin_routes(app: web.Application, extra: dict[str, Any] | None = None) -> None:
    async def requests(request: web.Request) -> web.Response:
        return web.json_response({"requests": request.app[STATE].requests})

    async def messages(request: web.Request) -> web.Response:
        return web.json_response({"messages": request.app[STATE].messages})

    async def count(request: web.Request) -> web.Response:
        """How many requests were recorded (to `?path=` only, if given) and how many of them
        were accepted: what a waiting benchmark polls, without every record's payload."""
        path = request.query.get("path")
        chosen = [r for r in request.app[STATE].requests if path is None or r["path"] == path]
        return web.json_response(
            {"requests": len(chosen), "accepted": sum(1 for r in chosen if r["accepted"])}
        )

    async def clear(request: web.Request) -> web.Response:
        state = request.app[STATE]
        state.requests.clear()
        state.messages.clear()
        return web.json_response({"cleared": True})

    async def faults(request: web.Request) -> web.Response:
        request.app[STATE].configure(await request.json())
        return web.json_response({"ok": True})

    async def reset(request: web.Request) -> web.Response:
        request.app[STATE].reset_faults()
        return web.json_response({"ok": True})

    app.router.add_get("/_admin/requests", requests)
    app.router.add_get("/__requests", requests)  # short alias for scripts (`make run`)
    app.router.add_get("/_admin/messages", messages)
    app.router.add_get("/_admin/count", count)
    app.router.add_delete("/_admin/requests", clear)
    app.router.add_post("/_admin/faults", faults)
    app.router.add_delete("/_admin/faults", reset)


Responder = Callable[[], Awaitable[web.StreamResponse]]
F = TypeVar("F", bound=Callable[..., Any])


def fault_options(func: F) -> F:
    """The fault-injection flags both fake servers' CLIs share."""
    options = [
        click.option("--fail-rate", type=float, default=0.0, show_default=True,
                     help="Share of create requests answered with a fault (0..1)."),
        click.option("--fail-status", type=int, multiple=True,
                     help="Fault status codes to draw from (repeatable; default 429 and 500)."),
        click.option("--retry-after", type=float, default=None,
                     help="Retry-After seconds sent with injected faults."),
        click.option("--latency", type=float, default=0.0, show_default=True,
                     help="Seconds added before answering every create request."),
        click.option("--seed", type=int, default=None, help="Seed of the fault draw."),
    ]  # fmt: skip
    for option in reversed(options):
        func = option(func)
    return func


def fast_loop() -> asyncio.AbstractEventLoop:
    """The fake's event loop: uvloop's, as the services run on. A fake stands in for a
    provider on the internet, so its CPU is not the pipeline's; on the 2-core machine the
    benchmarks share, the cheaper loop leaves more of it to what they measure."""
    return uvloop.new_event_loop()


def state_from_options(
    *,
    fail_rate: float,
    fail_status: tuple[int, ...],
    retry_after: float | None,
    latency: float,
    seed: int | None,
) -> FakeState:
    """A FakeState with the CLI's fault plan (a 5xx is injected as not processed)."""
    state = FakeState()
    faults = [
        {"status": status, "retry_after": retry_after} for status in (fail_status or (429, 500))
    ]
    state.configure({"storm": {"rate": fail_rate, "seed": seed, "faults": faults}})
    state.latency = latency
    return state


async def apply_fault(
    state: FakeState,
    fault: Fault | None,
    create: Callable[[], dict[str, Any]],
    error: Callable[[Fault], web.Response],
    success: Callable[[dict[str, Any]], web.Response],
    entry: dict[str, Any],
) -> web.Response:
    """Answer a create request under the fault plan; `entry` (the record) is filled in."""
    if state.latency:
        await asyncio.sleep(state.latency)
    message: dict[str, Any] | None = None
    if fault is None or fault.processed or fault.status is None:
        message = create()
        entry["accepted"] = True
        entry["message_id"] = message["id"]
    if fault is not None and fault.delay:
        await asyncio.sleep(fault.delay)
    if fault is not None and fault.status is not None:
        entry["status"] = fault.status
        return error(fault)
    assert message is not None
    response = success(message)
    entry["status"] = response.status
    return response


class FakeAdmin:
    """Blocking client of the admin API, for tests and benchmarks in other processes."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(  # noqa: S310 (loopback test peer)
            f"{self.base_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_admin/requests")["requests"])

    def accepted(self, path: str) -> int:
        """How many requests to `path` the fake accepted (no payloads: cheap to poll)."""
        query = urllib.parse.urlencode({"path": path})
        return int(self._call("GET", f"/_admin/count?{query}")["accepted"])

    def messages(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_admin/messages")["messages"])

    def clear(self) -> None:
        self._call("DELETE", "/_admin/requests")

    def faults(self, **plan: Any) -> None:
        self._call("POST", "/_admin/faults", plan)

    def reset_faults(self) -> None:
        self._call("DELETE", "/_admin/faults")

    def post(self, path: str, body: Any) -> Any:
        return self._call("POST", path, body)
