"""Close the loop on the real stack: ingest, sequencer and outbound as processes (their own
`leadctl` commands), real Kafka and PostgreSQL, the fake SendGrid and Twilio servers that the
official libraries talk to. The tests play the providers' webhooks, signed as they sign them.

- a lead answers STOP → no SMS ever again to that number, also when commands are re-emitted
  (a replay that is NOT record-only, the worst case) and for another location's lead;
- an email bounce → no more email to that address;
- a reply → the sequence stops and the lead is engaged (read through the lead API);
- a delivery callback → the touch point shows delivered in `job_executions`;
- consent at the source: a Shopmonkey customer UPDATE saying `optIn: false` takes effect
  before the lead's next SMS (skipped `sms_no_consent`, the consent kept in the ledger), and
  re-emitted commands send nothing new.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from fakes._recorder import FakeAdmin
from schemas.base import Channel, command_id_for
from schemas.events import Recipient, TouchPointCommand
from services.common.db.companies import new_webhook_secret
from services.common.db.tenants import hash_api_key
from services.common.kafka.admin import admin_client, ensure_topics
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics
from services.ingest.adapters.lead_reader_pg import hash_token
from tests.conftest import ROOT, free_port, new_topic_prefix, tz_at_local_hour
from tests.e2e.support import wait_http
from tests.support import deployment_secrets
from tests.support.phones import random_phone
from tests.support.provider_signing import SendGridSigner, sendgrid_body, twilio_signature

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]
T = TypeVar("T")
ACCOUNT = "AC" + "e2e0" * 8
TOKEN = "e2e-twilio-auth-token"
SENDER = "+12025550134"
WEBHOOK_SECRET = new_webhook_secret()
LEADCTL = str(Path(sys.executable).parent / "leadctl")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Person:
    email: str
    phone: str


@dataclass
class Stack:
    db_url: str
    topics: Topics
    bootstrap: str
    ingest: str
    sendgrid: FakeAdmin
    twilio: FakeAdmin
    signer: SendGridSigner
    people: list[Person]
    logs: Path
    producer: KafkaProducer
    used: list[Person] = field(default_factory=list)

    def person(self) -> Person:
        person = self.people.pop()
        self.used.append(person)
        return person

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return list(cur.fetchall()) if cur.description else []

    def tenant(self, steps: list[dict[str, Any]]) -> tuple[uuid.UUID, str, str]:
        """A location whose windows are open now, with this plan; (id, website key, lead token)."""
        tid, key, token = uuid.uuid4(), f"lk_{uuid.uuid4().hex}", f"lak_{uuid.uuid4().hex}"
        plan = {"name": "e2e", "steps": steps, "lost_after_minutes": 600, "min_gap_minutes": 0}
        self.sql(
            "INSERT INTO shopmonkey_companies (id, name, webhook_secret) VALUES (%s, %s, %s)",
            f"co_{tid.hex[:8]}",
            f"e2e company {tid.hex[:6]}",
            deployment_secrets.BOX.encrypt(WEBHOOK_SECRET),
        )
        self.sql(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
            " timezone, postal_address, website_api_key_sha256, lead_api_key_sha256,"
            " nurture_plan) VALUES (%s, %s, %s, %s, %s, '1 Main St, Springfield', %s, %s, %s)",
            tid,
            f"e2e {tid.hex[:6]}",
            f"co_{tid.hex[:8]}",
            f"loc_{tid.hex[:8]}",
            tz_at_local_hour(12),
            hash_api_key(key),
            hash_token(token),
            json.dumps(plan),
        )
        return tid, key, token

    def http(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        req = urllib.request.Request(  # noqa: S310 (loopback)
            self.ingest + path, data=body, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def website_lead(self, key: str, person: Person) -> uuid.UUID:
        """A website lead whose visitor ticked both consent boxes."""
        doc = {
            "submission_id": uuid.uuid4().hex,
            "name": "Sam Tester",
            "email": person.email,
            "phone": person.phone,
            "vehicle": "2019 Honda Civic",
            "consentSms": True,
            "consentEmail": True,
            "consentTextVersion": "e2e-v1",
            "consentedAt": datetime.now(UTC).isoformat(),
        }
        status, raw = self.http(
            "POST",
            "/api/leads",
            body=json.dumps(doc).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        assert status == 200, raw
        return uuid.UUID(json.loads(raw)["leadId"])

    def grant_sms(self, tenant: uuid.UUID, phone: str) -> None:
        """The tenant's company holds an SMS opt-in for `phone` (as a customer record would)."""
        self.sql(
            "INSERT INTO source_consent (company_id, channel, contact, source, opted_in,"
            " changed_at, event_key) VALUES (%s, 'sms', %s, 'shopmonkey', true, now(), 'e2e')",
            f"co_{tenant.hex[:8]}",
            phone,
        )

    def shopmonkey_webhook(self, tenant: uuid.UUID, doc: dict[str, Any]) -> tuple[int, bytes]:
        """A webhook of the tenant's company, signed as Shopmonkey signs it."""
        from fakes.shopmonkey.webhooks import standard_signature

        path = f"/webhooks/shopmonkey/companies/co_{tenant.hex[:8]}/order"
        body = json.dumps(doc).encode()
        stamp, msg = int(time.time()), f"msg_{uuid.uuid4().hex}"
        return self.http(
            "POST",
            path,
            body=body,
            headers={
                "webhook-id": msg,
                "webhook-timestamp": str(stamp),
                "webhook-signature": standard_signature(WEBHOOK_SECRET, msg, stamp, body),
                "Content-Type": "application/json",
            },
        )

    def twilio_webhook(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        from urllib.parse import urlencode

        signature = twilio_signature(TOKEN, self.ingest + path, params)
        return self.http(
            "POST",
            path,
            body=urlencode(params).encode(),
            headers={
                "X-Twilio-Signature": signature,
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )

    def sendgrid_webhook(self, events: list[dict[str, Any]]) -> tuple[int, bytes]:
        body = sendgrid_body(events)
        return self.http(
            "POST", "/webhooks/sendgrid/events", body=body, headers=self.signer.headers(body)
        )

    def sms_to(self, phone: str) -> list[dict[str, Any]]:
        """SMS the fake Twilio accepted for `phone`: {"sid", "form"} (from its request log;
        its /_admin/messages cannot serialise its datetimes)."""
        return [
            {"sid": r["message_id"], "form": r["payload"]}
            for r in self.twilio.requests()
            if r["method"] == "POST"
            and r["path"].endswith("/Messages.json")
            and r["accepted"]
            and r["payload"].get("To") == phone
        ]

    def email_to(self, email: str) -> list[dict[str, Any]]:
        return [m for m in self.sendgrid.messages() if m["to_email"] == email]

    def touch(self, command_id: uuid.UUID) -> tuple[Any, ...] | None:
        rows = self.sql(
            "SELECT status, reason, provider_message_id, delivery_status FROM job_executions"
            " WHERE command_id = %s",
            command_id,
        )
        return rows[0] if rows else None

    def decision(self, command_id: uuid.UUID) -> tuple[Any, ...] | None:
        """The command's ledger row once outbound decided it: a 'claimed' row is a decision
        in progress (the claim commits before the gate reads what it reads)."""
        row = self.touch(command_id)
        return None if row is None or row[0] == "claimed" else row

    def lead_view(self, lead: uuid.UUID, token: str, opted_out: str) -> dict[str, Any] | None:
        """The lead API's view once the channel shows opted out (None before)."""
        code, raw = self.http(
            "GET", f"/api/leads/{lead}", headers={"Authorization": f"Bearer {token}"}
        )
        view: dict[str, Any] | None = json.loads(raw) if code == 200 else None
        return view if view and view["optedOut"][opted_out] else None

    def reemit(self, command: TouchPointCommand) -> None:
        self.producer.send_sync(
            self.topics.touchpoint_commands, key=str(command.tenant_id), value=command.to_bytes()
        )


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


@pytest.fixture(scope="module")
def stack(
    db_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("signals-e2e")
    prefix = new_topic_prefix()
    topics = Topics(prefix)
    ensure_topics(kafka_bootstrap, partitions=4, names=topics.with_dlqs())
    people = [Person(f"e2e.{uuid.uuid4().hex[:8]}@example.com", random_phone()) for _ in range(6)]
    signer = SendGridSigner.generate()
    ports = {name: free_port() for name in ("ingest", "admin", "seq", "out", "sg", "tw")}
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "4",
        "LOG_LEVEL": "info",
        "LEAD_EMAIL_WHITELIST": ",".join(p.email for p in people),
        "LEAD_PHONE_WHITELIST": ",".join(p.phone for p in people),
        "SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": ACCOUNT,
        "TWILIO_PHONE_NUMBER": SENDER,
        "TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports['tw']}",
        "TWILIO_STATUS_CALLBACK_URL": f"http://127.0.0.1:{ports['ingest']}/webhooks/twilio/status",
        "SENDGRID_API_KEY": "SG.e2e-fake-key",
        "SENDGRID_API_BASE_URL": f"http://127.0.0.1:{ports['sg']}",
        "SENDGRID_FROM_EMAIL": "shop@example.com",
        "FREQUENCY_CAP_EMAIL": "0",
        "FREQUENCY_CAP_SMS": "0",
        "TWILIO_RATE_PER_SECOND": "20",
        "TWILIO_RATE_BURST": "5",
        "TOUCHPOINT_TICK_SECONDS": "1",
        "SEQUENCER_STORE": "memory://",
        "SEQUENCER_DATA_DIR": str(logs / "sequencer"),
        "SHOPMONKEY_API_BASE_URL": "http://127.0.0.1:9/v3",
        "ADMIN_PORT": str(ports["admin"]),
        **deployment_secrets.ENV,
    }
    for name in ("TENANT_ID", "TWILIO_MESSAGING_SERVICE_SID", "TWILIO_WEBHOOK_PUBLIC_URL"):
        env.pop(name, None)
    procs: list[subprocess.Popen[bytes]] = []
    producer = KafkaProducer(kafka_bootstrap, client_id="signals-e2e").start()
    try:
        specs = [
            ("sg", ["simulate", "sendgrid", "--port", str(ports["sg"])], "/_admin/messages"),
            (
                "tw",
                ["simulate", "twilio", "--port", str(ports["tw"]), "--auth-token", TOKEN],
                "/_admin/requests",
            ),
            ("ingest", ["ingest", "--port", str(ports["ingest"])], "/healthz"),
            ("seq", ["sequencer", "--port", str(ports["seq"])], "/healthz"),
            ("out", ["outbound", "--port", str(ports["out"])], "/healthz"),
        ]
        for name, args, health in specs:
            log = logs / f"{name}.log"
            proc = _start([LEADCTL, *args], env, log)
            procs.append(proc)
            wait_http(f"http://127.0.0.1:{ports[name]}{health}", proc, log)
        yield Stack(
            db_url=db_url,
            topics=topics,
            bootstrap=kafka_bootstrap,
            ingest=f"http://127.0.0.1:{ports['ingest']}",
            sendgrid=FakeAdmin(f"http://127.0.0.1:{ports['sg']}"),
            twilio=FakeAdmin(f"http://127.0.0.1:{ports['tw']}"),
            signer=signer,
            people=people,
            logs=logs,
            producer=producer,
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        producer.close()
        admin_client(kafka_bootstrap).delete_topics(topics.with_dlqs(), operation_timeout=10)


def command(
    tenant_id: uuid.UUID, lead_id: uuid.UUID, step: int, channel: Channel, person: Person
) -> TouchPointCommand:
    now = datetime.now(UTC)
    return TouchPointCommand(
        command_id=command_id_for(lead_id, step, channel),
        tenant_id=tenant_id,
        lead_id=lead_id,
        step_index=step,
        channel=channel,
        template="estimate_reminder" if channel is Channel.SMS else "estimate_followup",
        due_at=now,
        issued_at=now,
        recipient=Recipient(email=person.email, phone=person.phone, first_name="Sam"),
    )


SMS_FIRST = [
    {"after_minutes": 0, "channel": "sms", "template": "estimate_checkin"},
    {"after_minutes": 1, "channel": "sms", "template": "estimate_reminder"},
]


def test_stop_means_no_sms_ever_again(stack: Stack) -> None:
    person = stack.person()
    tenant, key, token = stack.tenant(SMS_FIRST)
    lead = stack.website_lead(key, person)
    first = command_id_for(lead, 0, Channel.SMS)
    wait_for("the first SMS", lambda: stack.sms_to(person.phone))
    wait_for("the first SMS in the ledger", lambda: (stack.touch(first) or ("",))[0] == "sent")

    status, answer = stack.twilio_webhook(
        "/webhooks/twilio/inbound",
        {"MessageSid": "SM" + uuid.uuid4().hex, "From": person.phone, "To": SENDER, "Body": "STOP"},
    )
    assert status == 200 and b"<Response" in answer
    assert stack.sql("SELECT 1 FROM suppressions WHERE channel='sms' AND contact=%s", person.phone)

    # A replay re-emits commands, not record-only (the worst case): the old one and the next
    # step of this lead, and a step of another location's lead with the same number.
    other_tenant, _, _ = stack.tenant(SMS_FIRST)
    stack.grant_sms(other_tenant, person.phone)  # consent there too: only the STOP forbids it
    other_lead = uuid.uuid4()
    replayed = [
        command(tenant, lead, 0, Channel.SMS, person),
        command(tenant, lead, 1, Channel.SMS, person),
        command(other_tenant, other_lead, 0, Channel.SMS, person),
    ]
    replayed[0] = replayed[0].model_copy(update={"template": "estimate_checkin"})
    for cmd in replayed:
        stack.reemit(cmd)
    for cmd in replayed[1:]:
        row = wait_for(
            f"outbound's decision on {cmd.command_id}", lambda c=cmd: stack.decision(c.command_id)
        )  # type: ignore[misc]
        assert row[0] == "skipped" and row[1] in {"suppressed", "lead_opted_out"}, row
    assert stack.touch(first)[0] == "sent"  # type: ignore[index]
    time.sleep(2)
    assert len(stack.sms_to(person.phone)) == 1
    # the sequencer took the opt-out too: SMS is off for this lead in the read model
    view = wait_for("sms opted out in the read model", lambda: stack.lead_view(lead, token, "sms"))
    assert view["optedOut"]["sms"] is True


def test_bounce_means_no_more_email(stack: Stack) -> None:
    person = stack.person()
    tenant, key, token = stack.tenant(
        [{"after_minutes": 0, "channel": "email", "template": "estimate_checkin"}]
    )
    lead = stack.website_lead(key, person)
    first = command_id_for(lead, 0, Channel.EMAIL)
    (sent,) = wait_for("the first email", lambda: stack.email_to(person.email))
    wait_for("the first email in the ledger", lambda: (stack.touch(first) or ("",))[0] == "sent")
    args = sent["custom_args"]
    assert args["command_id"] == str(first)
    event = {
        "email": person.email,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 unknown user",
        "timestamp": int(time.time()),
        "sg_event_id": uuid.uuid4().hex,
        **args,
    }
    status, _ = stack.sendgrid_webhook([event])
    assert status == 200
    assert stack.sql(
        "SELECT 1 FROM suppressions WHERE channel='email' AND contact=%s", person.email
    )
    assert stack.touch(first)[3] == "bounced"  # type: ignore[index]

    later = command(tenant, lead, 1, Channel.EMAIL, person)
    stack.reemit(later)
    row = wait_for("outbound's decision", lambda: stack.decision(later.command_id))
    assert row[0] == "skipped" and row[1] in {"suppressed", "lead_opted_out"}, row
    time.sleep(1)
    assert len(stack.email_to(person.email)) == 1
    view = wait_for("email off in the read model", lambda: stack.lead_view(lead, token, "email"))
    assert view["optedOut"]["email"] is True


def test_reply_stops_the_sequence_and_engages_the_lead(stack: Stack) -> None:
    person = stack.person()
    _, key, token = stack.tenant(
        [
            {"after_minutes": 0, "channel": "sms", "template": "estimate_checkin"},
            {"after_minutes": 1, "channel": "email", "template": "estimate_followup"},
        ]
    )
    created = time.monotonic()
    lead = stack.website_lead(key, person)
    wait_for("the first SMS", lambda: stack.sms_to(person.phone))
    status, _ = stack.twilio_webhook(
        "/webhooks/twilio/inbound",
        {"MessageSid": "SM" + uuid.uuid4().hex, "From": person.phone, "Body": "Friday 9am ok?"},
    )
    assert status == 200

    def lead_view() -> dict[str, Any] | None:
        code, raw = stack.http(
            "GET", f"/api/leads/{lead}", headers={"Authorization": f"Bearer {token}"}
        )
        view = json.loads(raw) if code == 200 else None
        return view if view and view["state"] == "engaged" else None

    view = wait_for("the lead engaged in the read model", lead_view)
    assert view["sequenceStopped"] is True
    # the email step was due one minute after creation: it never goes out
    time.sleep(max(0.0, 75 - (time.monotonic() - created)))
    assert stack.email_to(person.email) == []
    assert stack.touch(command_id_for(lead, 1, Channel.EMAIL)) is None


def test_delivery_callback_marks_the_touch_delivered(stack: Stack) -> None:
    person = stack.person()
    _, key, token = stack.tenant(SMS_FIRST[:1])
    lead = stack.website_lead(key, person)
    first = command_id_for(lead, 0, Channel.SMS)
    row = wait_for("the SMS in the ledger", lambda: (t := stack.touch(first)) and t[2] and t)
    (message,) = stack.sms_to(person.phone)
    assert row[2] == message["sid"]
    assert message["form"].get("StatusCallback", "").endswith("/webhooks/twilio/status")
    for status in ("sent", "delivered"):
        code, _ = stack.twilio_webhook(
            "/webhooks/twilio/status",
            {"MessageSid": message["sid"], "MessageStatus": status, "To": person.phone},
        )
        assert code == 200
    assert stack.touch(first)[3] == "delivered"  # type: ignore[index]
    code, raw = stack.http(
        "GET", f"/api/leads/{lead}", headers={"Authorization": f"Bearer {token}"}
    )
    if code == 200:  # the projection may lag; the ledger row is the contract
        history = json.loads(raw)["touchHistory"]
        assert history[0]["deliveryStatus"] == "delivered"


def customer_update(tenant: uuid.UUID, person: Person, *, opt_in: bool | None) -> dict[str, Any]:
    """A customer UPDATE webhook of the tenant's company for `person` (the phone's `optIn`
    left out when None, as a payload without the field)."""
    phone: dict[str, Any] = {"number": person.phone, "primary": True, "type": "Mobile"}
    if opt_in is not None:
        phone["optIn"] = opt_in
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "apiVersion": "3",
        "operation": "UPDATE",
        "table": "customer",
        "diff": ["phoneNumbers", "updatedDate"],
        "data": {
            "id": f"cus_{uuid.uuid4().hex[:12]}",
            "companyId": f"co_{tenant.hex[:8]}",
            "locationIds": [f"loc_{tenant.hex[:8]}"],
            "firstName": "Sam",
            "lastName": "Tester",
            "emails": [{"email": person.email, "primary": True, "subscribed": True}],
            "phoneNumbers": [phone],
            "marketingOptIn": True,
            "preferredContactMethod": "All",
            "createdDate": "2026-01-01T00:00:00Z",
            "updatedDate": now,
            "meta": {"version": int(time.time() * 1000)},
        },
    }


def test_opt_in_false_at_shopmonkey_means_no_sms_and_replay_sends_nothing(stack: Stack) -> None:
    person = stack.person()
    tenant, key, _ = stack.tenant(SMS_FIRST)
    lead = stack.website_lead(key, person)  # the visitor consented to SMS on the form
    first, second = (command_id_for(lead, i, Channel.SMS) for i in (0, 1))
    wait_for("the first SMS", lambda: stack.sms_to(person.phone))
    wait_for("the first SMS in the ledger", lambda: (stack.touch(first) or ("",))[0] == "sent")
    # the customer withdraws SMS consent in Shopmonkey: the next touch (+1 min) must not go
    status, raw = stack.shopmonkey_webhook(tenant, customer_update(tenant, person, opt_in=False))
    assert status in (200, 202), raw
    (stored,) = stack.sql(
        "SELECT opted_in, source FROM source_consent WHERE channel='sms' AND contact=%s",
        person.phone,
    )
    assert stored == (False, "shopmonkey")  # committed before the webhook was answered
    row = wait_for(
        "the second SMS decided", lambda: (t := stack.touch(second)) and t[0] != "claimed" and t
    )
    assert row[:2] == ("skipped", "sms_no_consent")
    (consent,) = stack.sql("SELECT consent FROM job_executions WHERE command_id=%s", second)
    assert consent[0]["opted_in"] is False and consent[0]["source"] == "shopmonkey"
    assert len(stack.sms_to(person.phone)) == 1
    # a replay that is NOT record-only (the worst case) and a new step: nothing new is sent
    for step in range(3):
        stack.reemit(command(tenant, lead, step, Channel.SMS, person))
    third = command_id_for(lead, 2, Channel.SMS)
    wait_for("the new step decided", lambda: (t := stack.touch(third)) and t[0] != "claimed")
    assert stack.touch(third)[:2] == ("skipped", "sms_no_consent")  # type: ignore[index]
    assert stack.touch(second)[:2] == ("skipped", "sms_no_consent")  # type: ignore[index]
    assert len(stack.sms_to(person.phone)) == 1
    # a later UPDATE without the field does not lift the refusal (absence is not consent)
    status, raw = stack.shopmonkey_webhook(tenant, customer_update(tenant, person, opt_in=None))
    assert status in (200, 202), raw
    (stored,) = stack.sql(
        "SELECT opted_in FROM source_consent WHERE channel='sms' AND contact=%s", person.phone
    )
    assert stored == (False,)
