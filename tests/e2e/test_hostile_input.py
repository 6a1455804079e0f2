"""Nothing from outside stops a stream or crashes a request, on the real stack (`leadctl
ingest`, `sequencer` with the leads projection, `outbound`, the fake SendGrid and Twilio, real
Kafka and PostgreSQL):

- a website form with a 39-digit phone: answered, the phone dropped, and the next normal lead
  reaches `leads` within seconds (once, one such post stopped the read model for every
  location: the projection retried the refused row forever);
- the whole list of absurd inputs (huge, non-ASCII digits, negative, float, empty, NUL bytes,
  deeply nested JSON, 10,000-element arrays; raw header bytes) to every public route, unsigned
  and correctly signed (so they reach the parsers, Kafka, the sequencer and the projection;
  the unsubscribe routes with a genuine signed link too), and to every route of the admin
  listener (the sign-in form as a browser posts it, the dashboard's JSON with an operator's
  API token): no 5xx, no service down, and a normal order afterwards is still a lead and an
  email.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import psycopg
import pytest

from fakes._recorder import FakeAdmin
from services.common.db.engine import async_engine
from services.common.db.tenants import hash_api_key
from services.common.kafka.admin import admin_client, ensure_topics
from services.common.topics import Topics
from services.ingest.adapters.lead_reader_pg import hash_token
from tests.conftest import ROOT, free_port, new_topic_prefix, tz_at_local_hour
from tests.e2e.support import wait_http
from tests.support import deployment_secrets
from tests.support.absurd import (
    ABSURD_BODIES,
    ABSURD_HEADERS,
    ABSURD_SIGN_IN_FORMS,
    ABSURD_VALUES,
    SIGN_IN_HEADERS,
    admin_routes,
    public_routes,
    raw_request,
)
from tests.support.operators import add_account
from tests.support.phones import random_phone
from tests.support.provider_signing import Callers, SendGridSigner

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]
TOKEN = "hostile-e2e-twilio-token"
LEADCTL = str(Path(sys.executable).parent / "leadctl")
WHITELISTED = f"hostile.{uuid.uuid4().hex[:8]}@example.com"


@dataclass
class Stack:
    db_url: str
    port: int
    admin_port: int
    sendgrid: FakeAdmin
    signer: SendGridSigner
    procs: dict[str, subprocess.Popen[bytes]]
    logs: Path
    tenant: uuid.UUID = field(default_factory=uuid.uuid4)
    secret: str = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    website_key: str = f"lk_{uuid.uuid4().hex}"
    lead_token: str = f"lak_{uuid.uuid4().hex}"

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def add_tenant(self) -> None:
        """A location whose windows are open now; no Shopmonkey key (nothing to look up). Its
        company's webhook secret is stored encrypted, as ingest reads it."""
        company = f"co_{self.tenant.hex[:8]}"
        self.sql(
            "INSERT INTO shopmonkey_companies (id, name, webhook_secret) VALUES (%s, %s, %s)",
            company,
            f"hostile company {self.tenant.hex[:6]}",
            deployment_secrets.BOX.encrypt(self.secret),
        )
        self.sql(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
            " timezone, postal_address, website_api_key_sha256, lead_api_key_sha256)"
            " VALUES (%s, %s, %s, %s, %s, '1 Main St, Springfield', %s, %s)",
            self.tenant,
            f"hostile {self.tenant.hex[:6]}",
            company,
            f"loc_{self.tenant.hex[:8]}",
            tz_at_local_hour(12),
            hash_api_key(self.website_key),
            hash_token(self.lead_token),
        )

    def send(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        admin: bool = False,
    ) -> int:
        port = self.admin_port if admin else self.port
        return asyncio.run(raw_request(port, method, path, headers, body))

    def operator_token(self) -> str:
        """The API token of a new hq operator (argon2-hashed in `operators`)."""

        async def add() -> str:
            engine = async_engine("postgresql+psycopg://" + self.db_url.split("://", 1)[1])
            try:
                return (await add_account(engine)).token
            finally:
                await engine.dispose()

        return asyncio.run(add())

    def signed(self, path: str, body: bytes) -> list[tuple[bytes, bytes]]:
        """What a genuine caller of `path` sends with `body`."""
        return Callers(
            port=self.port,
            webhook_secret=self.secret,
            website_key=self.website_key,
            lead_token=self.lead_token,
            sendgrid=self.signer,
            twilio_token=TOKEN,
        ).headers(path, body)

    def post_json(self, path: str, doc: Any) -> tuple[int, dict[str, Any]]:
        body = json.dumps(doc).encode()
        headers = {k.decode(): v.decode() for k, v in self.signed(path, body)}
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", data=body, method="POST", headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def lead(self, lead_id: str) -> tuple[Any, ...] | None:
        rows = self.sql("SELECT lead_id, phone, email FROM leads WHERE lead_id = %s", lead_id)
        return rows[0] if rows else None

    def alive(self) -> None:
        for name, proc in self.procs.items():
            assert proc.poll() is None, f"{name} died:\n{self.tail(name)}"

    def tail(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]

    def wait(self, what: str, probe: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = probe()
            if value:
                return value
            self.alive()
            time.sleep(0.25)
        tails = "\n".join(f"--- {n} ---\n{self.tail(n)}" for n in self.procs)
        raise AssertionError(f"timed out waiting for {what}\n{tails}")


@pytest.fixture(scope="module")
def stack(
    db_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("hostile-e2e")
    topics = Topics(new_topic_prefix())
    ensure_topics(kafka_bootstrap, partitions=4, names=topics.with_dlqs())
    signer = SendGridSigner.generate()
    ports = {name: free_port() for name in ("ingest", "admin", "sequencer", "outbound", "sg", "tw")}
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TENANT_ID", "TWILIO_", "ADMIN_"))
        },
        **deployment_secrets.ENV,
        "ADMIN_PORT": str(ports["admin"]),
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topics.prefix,
        "KAFKA_PARTITIONS": "4",
        "LOG_LEVEL": "info",
        "LEAD_EMAIL_WHITELIST": WHITELISTED,
        "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
        "SENDGRID_API_KEY": "SG.hostile-e2e",
        "SENDGRID_API_BASE_URL": f"http://127.0.0.1:{ports['sg']}",
        "SENDGRID_FROM_EMAIL": "shop@example.com",
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
        "TWILIO_PHONE_NUMBER": "+12025550199",
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports['tw']}",
        "TWILIO_STATUS_CALLBACK_URL": "",
        "SHOPMONKEY_API_BASE_URL": "http://127.0.0.1:9/v3",
        "SEQUENCER_STORE": "memory://",
        "SEQUENCER_DATA_DIR": str(logs / "sequencer"),
        "TOUCHPOINT_TICK_SECONDS": "1",
        "TENANT_CACHE_SECONDS": "1",
        "FREQUENCY_CAP_EMAIL": "0",  # every lead here shares the one whitelisted address
        # one loopback address plays every caller here: the barrage must not throttle the
        # genuine order that follows it (tests/unit/ingest shows the throttle)
        "AUTH_FAILURE_BURST": "100000",
        "SIGN_IN_MAX_FAILURES_PER_ADDRESS": "10000",
    }
    procs: dict[str, subprocess.Popen[bytes]] = {}
    specs = [
        ("sg", ["simulate", "sendgrid", "--port", str(ports["sg"])], "/_admin/requests"),
        ("tw", ["simulate", "twilio", "--port", str(ports["tw"])], "/_admin/requests"),
        ("ingest", ["ingest", "--port", str(ports["ingest"])], "/healthz"),
        ("sequencer", ["sequencer", "--port", str(ports["sequencer"])], "/healthz"),
        ("outbound", ["outbound", "--port", str(ports["outbound"])], "/healthz"),
    ]
    try:
        for name, args, health in specs:
            log = logs / f"{name}.log"
            with log.open("wb") as out:
                procs[name] = subprocess.Popen(
                    [LEADCTL, *args], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
                )
            wait_http(f"http://127.0.0.1:{ports[name]}{health}", procs[name], log)
        s = Stack(
            db_url=db_url,
            port=ports["ingest"],
            admin_port=ports["admin"],
            sendgrid=FakeAdmin(f"http://127.0.0.1:{ports['sg']}"),
            signer=signer,
            procs={n: procs[n] for n in ("ingest", "sequencer", "outbound")},
            logs=logs,
        )
        s.add_tenant()
        yield s
    finally:
        for proc in reversed(list(procs.values())):
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        admin_client(kafka_bootstrap).delete_topics(topics.with_dlqs(), operation_timeout=10)


def form(**fields: Any) -> dict[str, Any]:
    return {"submission_id": uuid.uuid4().hex, "name": "Sam Lee", "email": WHITELISTED, **fields}


def test_a_39_digit_phone_stops_nothing(stack: Stack) -> None:
    status, answer = stack.post_json("/api/leads", form(phone="+1" + "9" * 38))
    assert status == 200, answer
    poisoned = answer["leadId"]
    status, answer = stack.post_json("/api/leads", form(phone=random_phone()))
    assert status == 200, answer
    normal = answer["leadId"]
    started = time.monotonic()
    stack.wait("the next normal lead in `leads`", lambda: stack.lead(normal), 60)
    took = time.monotonic() - started
    row = stack.wait("the first lead in `leads`", lambda: stack.lead(poisoned), 10)
    assert row[1] is None and row[2] == WHITELISTED  # the phone was no number: dropped
    print(f"the next normal lead reached `leads` {took:.1f} s after the posts")


def order_doc(data: dict[str, Any], operation: str = "INSERT") -> dict[str, Any]:
    return {"apiVersion": "3", "operation": operation, "table": "order", "data": data}


def normal_order() -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "number": "1001",
        "status": "Estimate",
        "createdDate": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "generatedVehicleName": "2019 Honda Civic",
        "meta": {"version": 1},
        "customer": {
            "id": f"c-{uuid.uuid4().hex[:8]}",
            "firstName": "Sam",
            "lastName": "Lee",
            "emails": [{"email": WHITELISTED, "primary": True}],
            "phoneNumbers": [{"number": random_phone(), "primary": True}],
        },
    }


def absurd_orders() -> Iterator[dict[str, Any]]:
    """Signed order webhooks with each absurd value in each field a record may have."""
    fields = [
        "number",
        "status",
        "generatedVehicleName",
        "generatedCustomerName",
        "customerId",
        "totalCostCents",
        "services",
        "createdDate",
        "updatedDate",
        "meta",
        "authorized",
    ]
    customer_fields = ["id", "firstName", "lastName", "email", "phone", "emails", "phoneNumbers"]
    for value in ABSURD_VALUES:
        yield order_doc({**normal_order(), "id": value})
        for name in fields:
            yield order_doc({**normal_order(), name: value})
        for name in customer_fields:
            data = normal_order()
            data["customer"][name] = value
            yield order_doc(data)
        yield order_doc({**normal_order(), "services": [{"name": value}] * 3})
        yield {"apiVersion": value, "operation": value, "table": value, "data": value}


def absurd_forms() -> Iterator[dict[str, Any]]:
    for value in ABSURD_VALUES:
        for name in ("submission_id", "name", "email", "phone", "vehicle", "service"):
            yield form(**{name: value})


def test_absurd_inputs_to_every_public_route_get_no_5xx_and_stop_nothing(stack: Stack) -> None:
    routes = public_routes(stack.tenant, uuid.uuid4())
    failures: list[str] = []
    seen: dict[str, set[int]] = {}
    sent = 0

    def send(
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        admin: bool = False,
    ) -> None:
        nonlocal sent
        status = stack.send(method, path, headers, body, admin=admin)
        seen.setdefault(path, set()).add(status)
        sent += 1
        if status >= 500 or status == 0:
            where = "admin " if admin else ""
            failures.append(f"{where}{method} {path} {headers!r:.200} {body[:80]!r} -> {status}")

    # every absurd body and header on every route, unsigned and signed
    for method, path in routes:
        genuine = stack.signed(path, b"{}")
        for name in {n for n, _ in genuine} | {b"Content-Type", b"Authorization"}:
            for value in ABSURD_HEADERS:
                send(method, path, [*(h for h in genuine if h[0] != name), (name, value)], b"{}")
        for body in ABSURD_BODIES:
            send(method, path, [], body)
            send(method, path, stack.signed(path, body), body)
    # absurd values in every field, correctly signed: into Kafka, the sequencer, `leads`
    shopmonkey, website = routes[0][1], routes[4][1]
    for doc in absurd_orders():
        body = json.dumps(doc, default=str).encode()
        send("POST", shopmonkey, stack.signed(shopmonkey, body), body)
    for doc in absurd_forms():
        body = json.dumps(doc, default=str).encode()
        send("POST", website, stack.signed(website, body), body)
    for value in ABSURD_VALUES[:16]:
        params = {"MessageSid": str(value)[:64], "From": str(value)[:64], "Body": str(value)}
        body = urlencode(params).encode()
        for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status"):
            send("POST", path, stack.signed(path, body), body)
        events = json.dumps([{"event": "bounce", "email": value, "reason": value}], default=str)
        send("POST", "/webhooks/sendgrid/events", stack.signed(routes[5][1], events.encode()),
             events.encode())  # fmt: skip
    # the admin listener: each absurd header in place of what a browser (the sign-in form) or
    # a script (the dashboard's JSON, with an operator's API token) sends, every absurd body
    token = stack.operator_token()
    genuine = [*SIGN_IN_HEADERS, (b"Authorization", f"Bearer {token}".encode())]
    for method, path in admin_routes(stack.tenant):
        for name in {n for n, _ in genuine} | {b"Cookie"}:
            for value in ABSURD_HEADERS:
                headers = [*(h for h in genuine if h[0] != name), (name, value)]
                send(method, path, headers, b"email=a%40b.co&password=x", admin=True)
        for body in [*ABSURD_BODIES, *ABSURD_SIGN_IN_FORMS]:
            send(method, path, [], body, admin=True)
            send(method, path, genuine, body, admin=True)
    assert sent > 2000, sent
    assert not failures, "\n".join(failures[:20])
    # past the checks: a wrong sign-in was tried, the operator's summary answered
    assert 401 in seen["/dashboard/sign-in"], seen["/dashboard/sign-in"]
    assert 200 in seen[admin_routes(stack.tenant)[4][1]], seen
    # signed absurd records went through (into Kafka: 200) as well as being refused (400)
    assert {200, 400} <= seen[shopmonkey] and {200, 400} <= seen[website], seen
    stack.alive()

    # and the pipeline still delivers a normal order: a lead, then its first email
    data = normal_order()
    status, answer = stack.post_json(shopmonkey, order_doc(data))
    assert status == 200, answer
    lead_id = answer["leadId"]
    stack.wait("the normal order's lead in `leads`", lambda: stack.lead(lead_id), 120)

    def emailed() -> bool:
        return any(
            r["method"] == "POST"
            and r["accepted"]
            and r["payload"].get("custom_args", {}).get("lead_id") == lead_id
            for r in stack.sendgrid.requests()
        )

    stack.wait("the normal order's first email at SendGrid", emailed, 120)
    stack.alive()
