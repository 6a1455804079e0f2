"""The Shopmonkey v3 API subset on real HTTP, plus an `/_admin` API to drive it.

API (Bearer API key per company; every answer `{success, data, meta?}` or
`{success: false, code, message}`):
- `GET /v3/order`, `GET /v3/customer`: `where` (Prisma JSON), `orderby` (JSON object),
  `limit` (silently capped at 100), `skip`; `meta: {total, hasMore}`. Quirks as probed
  (reference §2.3): reading "lowercase" (default) honours `orderby` and silently ignores
  camelCase `orderBy`; reading "camel" honours `orderBy` and answers 400 "Unable to parse
  orderby" to the lowercase one. `ignore_filter` / `ignore_orderby` drop them silently.
- Every list is the company's (the API key's) across all its locations. A location filter,
  as probed (reference §3): `where` on `locationId` (Prisma, e.g. `{"in": [...]}`) is honoured;
  the `locationId` query parameter filters when it names a location of the company and is
  silently ignored (the whole table, 200) when it does not. `ignore_location_filter` drops
  both silently (the open question whether a valid one scopes a multi-location account).
- `GET /v3/appointment`: the same list grammar and location filter as orders.
- `GET /v3/order/{id}`, `GET /v3/customer/{id}`, `GET /v3/appointment/{id}`: one record, or
  404; `GET /v3/order/{id}/service`: the order's services (not nested in the order), or 404.
- Injectable 429s with `Retry-After` (`POST /_admin/rate_limit {"times": 3, "retry_after": 1}`).

Admin (JSON): `GET /_admin/state`, `GET /_admin/requests`, `GET /_admin/deliveries`,
`POST /_admin/quirks {...}`, `POST /_admin/rate_limit`, `POST /_admin/orders
{"tenant_id"?, "count"?, "webhook"?, "email"?, "customer_id"?, "consent"?}` (at that location,
else a random one; for that customer of the company, or with `email` a new customer with that
address; `consent`: what a new customer's record says, as the customer route takes it),
`POST /_admin/orders/{id}/advance`, `POST /_admin/orders/{id}/delete`,
`POST /_admin/customers/{id} {"email"?, "phone"?, "smsOptIn"?, "phoneType"?,
"emailSubscribed"?, "marketingOptIn"?, "preferredContactMethod"?}`,
`POST /_admin/appointments {"order_id", "start"?, "send_reminder"?, "webhook"?}`,
`POST /_admin/appointments/{id}/move {"start"}`, `POST /_admin/appointments/{id}/cancel
{"note"?}`, `POST /_admin/appointments/{id}/delete` (each sent as an `appointment` webhook).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from fakes.shopmonkey.data import CONSENT_CHANGES, Company, Location, World, fictional_phone
from fakes.shopmonkey.query import matches, order_records
from fakes.shopmonkey.webhooks import WebhookSender, envelope

log = logging.getLogger(__name__)
MAX_LIMIT = 100


@dataclass
class Quirks:
    orderby_reading: str = "lowercase"  # or "camel"
    ignore_filter: bool = False
    ignore_orderby: bool = False
    ignore_location_filter: bool = False
    latency: float = 0.0


def _error(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = {"success": False, "code": code, "message": message}
    return web.json_response(body, status=status, headers=headers or None)


class Simulator:
    """A running simulator: the world, its HTTP server, the webhook sender and activity."""

    def __init__(self, world: World, *, sender: WebhookSender | None = None) -> None:
        self.world = world
        self.sender = sender
        self.quirks = Quirks()
        self.rate_limits: deque[float] = deque()
        self.requests: list[dict[str, Any]] = []
        self.runner: web.AppRunner | None = None
        self.url = ""
        self._activity: asyncio.Task[None] | None = None

    # lifecycle ------------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Simulator:
        self.runner = web.AppRunner(self.app(), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port).start()
        bound = self.runner.addresses[0][1]
        self.url = f"http://{host}:{bound}"
        return self

    @property
    def api_base(self) -> str:
        return f"{self.url}/v3"

    async def stop(self) -> None:
        if self._activity is not None:
            self._activity.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._activity
        if self.sender is not None:
            await self.sender.close()
        if self.runner is not None:
            await self.runner.cleanup()

    # changes (+ webhooks) ---------------------------------------------------------------------
    async def notify(
        self, company: Company, table: str, operation: str, data: dict[str, Any], diff: Any = None
    ) -> Any:
        """Send the change as a webhook: an order from its location, a customer from its
        first location of the company (see `WebhookSender`)."""
        if self.sender is None:
            return None
        doc = envelope(table, operation, json.loads(json.dumps(data)), diff)
        located = table in ("order", "appointment")
        ids = [data.get("locationId")] if located else data.get("locationIds") or []
        known = {loc.location_id: loc for loc in company.locations}
        location = next((known[i] for i in ids if i in known), None)
        return await self.sender.send(company, doc, location=location)

    async def create_order(
        self,
        company: Company,
        *,
        webhook: bool = True,
        location: Location | None = None,
        email: str | None = None,
        customer_id: str | None = None,
        consent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        order = self.world.create_order(
            company, location=location, email=email, customer_id=customer_id, consent=consent
        )
        if webhook:
            await self.notify(company, "order", "INSERT", order)
        return order

    async def advance_order(self, company: Company, order_id: str, *, webhook: bool = True) -> Any:
        order, diff = self.world.advance_order(company, order_id)
        if webhook:
            await self.notify(company, "order", "UPDATE", order, diff)
        return order

    async def create_appointment(
        self,
        company: Company,
        order_id: str,
        *,
        webhook: bool = True,
        start: datetime | None = None,
        send_reminder: bool | None = None,
    ) -> dict[str, Any]:
        record = self.world.create_appointment(
            company, order_id, start=start, send_reminder=send_reminder
        )
        if webhook:
            await self.notify(company, "appointment", "INSERT", record)
        return record

    async def move_appointment(
        self, company: Company, appointment_id: str, start: datetime, *, webhook: bool = True
    ) -> dict[str, Any]:
        record, diff = self.world.move_appointment(company, appointment_id, start)
        if webhook:
            await self.notify(company, "appointment", "UPDATE", record, diff)
        return record

    async def cancel_appointment(
        self, company: Company, appointment_id: str, *, webhook: bool = True, **note: str
    ) -> dict[str, Any]:
        record, diff = self.world.cancel_appointment(company, appointment_id, **note)
        if webhook:
            await self.notify(company, "appointment", "UPDATE", record, diff)
        return record

    async def delete_appointment(
        self, company: Company, appointment_id: str, *, webhook: bool = True
    ) -> dict[str, Any]:
        record = self.world.delete_appointment(company, appointment_id)
        if webhook:
            await self.notify(company, "appointment", "DELETE", record)
        return record

    def start_activity(
        self, rate_per_minute: float, seed: int | None = None, *, demo_story: bool = False
    ) -> None:
        """Create/advance orders and change customers at `rate_per_minute`, with webhooks;
        `demo_story`: also move demo customers' orders on (`_demo_story`)."""
        if rate_per_minute > 0:
            self._activity = asyncio.create_task(
                self._run_activity(rate_per_minute, seed, demo_story)
            )

    async def _run_activity(self, rate: float, seed: int | None, demo_story: bool) -> None:
        rng = random.Random(seed)
        # appointments from a generator of their own: the changes above stay those of `seed`
        appointments = random.Random(f"{seed}:appointments")
        demo = random.Random(f"{seed}:demo")
        while True:
            await asyncio.sleep(rng.expovariate(rate / 60.0))
            company = rng.choice(self.world.companies)
            try:
                roll = rng.random()
                if roll < 0.6 or not company.orders:
                    await self.create_order(company, location=rng.choice(company.locations))
                elif roll < 0.9:
                    await self.advance_order(company, rng.choice(list(company.orders)))
                else:
                    cid = rng.choice(list(company.customers))
                    record, diff = self.world.update_customer(
                        company, cid, {"phone": fictional_phone(rng)}
                    )
                    await self.notify(company, "customer", "UPDATE", record, diff)
                await self._appointment_activity(company, appointments)
                if demo_story:
                    await self._demo_story(company, demo)
            except Exception:
                log.exception("simulated activity failed")

    async def _demo_story(self, company: Company, rng: random.Random) -> None:
        """With demo customers: every other step also moves one of their unpaid orders on
        (authorized, repair order, invoice, paid), so a demo shows an estimate's whole life,
        and the campaigns after it (declined work, the review request), within minutes."""
        if not self.world.demo_emails or rng.random() < 0.5:
            return
        demo = set(self.world.demo_emails)
        open_orders = [
            o["id"]
            for o in company.orders.values()
            if not o["paid"] and not o.get("deleted") and self._email_of(company, o) in demo
        ]
        if open_orders:
            await self.advance_order(company, rng.choice(sorted(open_orders)))

    @staticmethod
    def _email_of(company: Company, order: dict[str, Any]) -> str | None:
        customer = company.customers.get(order.get("customerId") or "")
        emails = customer.get("emails") if customer else None
        return emails[0].get("email") if emails else None

    async def _appointment_activity(self, company: Company, rng: random.Random) -> None:
        """Now and then: book an authorized order, move an appointment's start, cancel one."""
        roll = rng.random()
        booked = {a["orderId"] for a in company.appointments.values()}
        live = [
            a
            for a in company.appointments.values()
            if a.get("cancelationNote") is None and not a.get("deleted")
        ]
        if roll < 0.25:
            open_orders = [
                o["id"]
                for o in company.orders.values()
                if o["authorized"] and not o["invoiced"] and o["id"] not in booked
            ]
            if open_orders:
                await self.create_appointment(company, rng.choice(open_orders))
        elif roll < 0.35 and live:
            appointment = rng.choice(live)
            start = datetime.fromisoformat(appointment["startDate"])
            await self.move_appointment(
                company, appointment["id"], start + timedelta(hours=rng.choice([-24, 2, 24, 48]))
            )
        elif roll < 0.4 and live:
            await self.cancel_appointment(company, rng.choice(live)["id"])

    # HTTP -----------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v3/{table:order|customer|appointment}", self._list)
        app.router.add_get("/v3/{table:order|customer|appointment}/{id}", self._get)
        app.router.add_get("/v3/order/{id}/service", self._services)
        app.router.add_get("/_admin/state", self._state)
        app.router.add_get("/_admin/requests", self._requests)
        app.router.add_get("/_admin/deliveries", self._deliveries)
        app.router.add_post("/_admin/quirks", self._set_quirks)
        app.router.add_post("/_admin/rate_limit", self._set_rate_limit)
        app.router.add_post("/_admin/orders", self._admin_create)
        app.router.add_post("/_admin/orders/{id}/advance", self._admin_advance)
        app.router.add_post("/_admin/orders/{id}/delete", self._admin_delete)
        app.router.add_post("/_admin/customers/{id}", self._admin_customer)
        app.router.add_post("/_admin/appointments", self._admin_appointment)
        app.router.add_post(
            "/_admin/appointments/{id}/{action:move|cancel|delete}", self._admin_rebook
        )
        return app

    async def _gate(self, request: web.Request) -> Company | web.Response:
        entry = {"method": request.method, "path": request.path, "query": dict(request.query)}
        self.requests.append(entry)
        if self.quirks.latency:
            await asyncio.sleep(self.quirks.latency)
        header = request.headers.get("Authorization", "")
        company = self.world.by_key.get(header[7:]) if header.startswith("Bearer ") else None
        entry["tenant_id"] = str(company.tenant_id) if company else None  # its first location
        entry["company_id"] = company.company_id if company else None
        if company is None:
            entry["status"] = 401
            return _error(401, "AUTH-401", "Unauthorized")
        if self.rate_limits:
            retry_after = self.rate_limits.popleft()
            entry["status"] = 429
            return _error(429, "RATE-429", "Too Many Requests", **{
                "Retry-After": f"{retry_after:g}",
                "X-RateLimit-Limit-Minute": "100",
                "X-RateLimit-Remaining-Minute": "0",
            })  # fmt: skip
        entry["status"] = 200
        return company

    async def _list(self, request: web.Request) -> web.Response:
        company = await self._gate(request)
        if isinstance(company, web.Response):
            return company
        table = request.match_info["table"]
        query = request.query
        try:
            limit = min(int(query.get("limit", "100")), MAX_LIMIT)
            skip = int(query.get("skip", "0"))
        except ValueError:
            return _error(400, "VAL-400", "querystring/limit must be number")
        try:
            where = json.loads(query["where"]) if "where" in query else {}
        except ValueError:
            return _error(400, "VAL-400", "Invalid Usage: Unable to parse where")
        lower, camel = query.get("orderby"), query.get("orderBy")
        reading = self.quirks.orderby_reading
        if reading == "camel" and lower is not None:
            return _error(400, "VAL-400", "Invalid Usage: Unable to parse orderby")
        raw_order = camel if reading == "camel" else lower  # the other spelling: ignored
        try:
            orderby = json.loads(raw_order) if raw_order else None
        except ValueError:
            return _error(400, "VAL-400", "Invalid Usage: Unable to parse orderby")
        records = list(_table(company, table).values())
        location = query.get("locationId")
        if self.quirks.ignore_location_filter and isinstance(where, dict):
            where = {k: v for k, v in where.items() if k != "locationId"}
        elif location in {loc.location_id for loc in company.locations} and table != "customer":
            records = [r for r in records if r["locationId"] == location]
        if records and isinstance(where, dict) and not self.quirks.ignore_filter:
            fields = frozenset(records[0])
            records = [r for r in records if matches(r, where, fields)]
        if orderby is not None and not self.quirks.ignore_orderby:
            records = order_records(records, orderby)
        page = records[skip : skip + limit]
        meta = {"total": len(records), "hasMore": skip + len(page) < len(records)}
        return web.json_response({"success": True, "data": page, "meta": meta})

    async def _get(self, request: web.Request) -> web.Response:
        company = await self._gate(request)
        if isinstance(company, web.Response):
            return company
        table = request.match_info["table"]
        record = _table(company, table).get(request.match_info["id"])
        if record is None:
            return _error(404, "NF-404", f"{table} not found")
        return web.json_response({"success": True, "data": record})

    async def _services(self, request: web.Request) -> web.Response:
        company = await self._gate(request)
        if isinstance(company, web.Response):
            return company
        services = company.services.get(request.match_info["id"])
        if services is None:
            return _error(404, "NF-404", "order not found")
        meta = {"total": len(services), "hasMore": False}
        return web.json_response({"success": True, "data": services, "meta": meta})

    # admin ----------------------------------------------------------------------------------
    async def _state(self, _: web.Request) -> web.Response:
        return web.json_response({"companies": [c.public() for c in self.world.companies]})

    async def _requests(self, _: web.Request) -> web.Response:
        return web.json_response({"requests": self.requests})

    async def _deliveries(self, _: web.Request) -> web.Response:
        deliveries = [asdict(d) for d in self.sender.deliveries] if self.sender else []
        return web.json_response({"deliveries": deliveries})

    async def _set_quirks(self, request: web.Request) -> web.Response:
        body = await request.json()
        for name, value in body.items():
            if hasattr(self.quirks, name):
                setattr(self.quirks, name, value)
        return web.json_response(asdict(self.quirks))

    async def _set_rate_limit(self, request: web.Request) -> web.Response:
        body = await request.json()
        for _ in range(int(body.get("times", 1))):
            self.rate_limits.append(float(body.get("retry_after", 1)))
        return web.json_response({"pending": len(self.rate_limits)})

    def _location_for(self, body: dict[str, Any]) -> Location:
        tid = body.get("tenant_id")
        return self.world.location(tid) if tid else random.choice(self.world.locations)

    async def _admin_create(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        created = []
        for _ in range(int(body.get("count", 1))):
            location = self._location_for(body)
            order = await self.create_order(
                location.company,
                webhook=bool(body.get("webhook", True)),
                location=location,
                email=body.get("email"),
                customer_id=body.get("customer_id"),
                consent=body.get("consent"),
            )
            created.append({"tenant_id": str(location.tenant_id), "order": order})
        return web.json_response({"created": created})

    def _owner(self, order_id: str) -> Company:
        for company in self.world.companies:
            if (
                order_id in company.orders
                or order_id in company.customers
                or order_id in company.appointments
            ):
                return company
        raise web.HTTPNotFound(text=json.dumps({"message": "no such record"}))

    async def _admin_advance(self, request: web.Request) -> web.Response:
        order_id = request.match_info["id"]
        order = await self.advance_order(self._owner(order_id), order_id)
        return web.json_response({"order": order})

    async def _admin_delete(self, request: web.Request) -> web.Response:
        order_id = request.match_info["id"]
        company = self._owner(order_id)
        order = self.world.delete_order(company, order_id)
        await self.notify(company, "order", "DELETE", order)
        return web.json_response({"order": order})

    async def _admin_customer(self, request: web.Request) -> web.Response:
        customer_id = request.match_info["id"]
        company = self._owner(customer_id)
        allowed = ("email", "phone", *CONSENT_CHANGES)
        changes = {k: v for k, v in (await request.json()).items() if k in allowed}
        record, diff = self.world.update_customer(company, customer_id, changes)
        await self.notify(company, "customer", "UPDATE", record, diff)
        return web.json_response({"customer": record})

    async def _admin_appointment(self, request: web.Request) -> web.Response:
        body = await request.json()
        order_id = str(body["order_id"])
        start = datetime.fromisoformat(body["start"]) if body.get("start") else None
        reminder = body.get("send_reminder")
        record = await self.create_appointment(
            self._owner(order_id),
            order_id,
            webhook=bool(body.get("webhook", True)),
            start=start,
            send_reminder=None if reminder is None else bool(reminder),
        )
        return web.json_response({"appointment": record})

    async def _admin_rebook(self, request: web.Request) -> web.Response:
        appointment_id = request.match_info["id"]
        company = self._owner(appointment_id)
        body = await request.json() if request.can_read_body else {}
        action = request.match_info["action"]
        if action == "move":
            start = datetime.fromisoformat(body["start"])
            record = await self.move_appointment(company, appointment_id, start)
        elif action == "cancel":
            note = {"note": str(body["note"])} if body.get("note") else {}
            record = await self.cancel_appointment(company, appointment_id, **note)
        else:
            record = await self.delete_appointment(company, appointment_id)
        return web.json_response({"appointment": record})


def _table(company: Company, table: str) -> dict[str, dict[str, Any]]:
    if table == "order":
        return company.orders
    return company.appointments if table == "appointment" else company.customers
