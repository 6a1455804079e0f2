"""One Shopmonkey company, several locations, end to end on the real stack (real Kafka and
PostgreSQL, `leadctl ingest|poller|sequencer|outbound` as processes, the Shopmonkey simulator,
fake SendGrid and Twilio):

- the operator sets it up as an operator would: `leadctl companies add` (the company's key
  and webhook secret) and `leadctl tenants add --company …` for three of its four locations;
- the simulator sends company-global webhooks to the company URL, while the poller reads the
  company too (the simulator ignoring the location filter, so the poller sees every location's
  orders and must route them itself), and some orders have no webhook at all;
- every order is exactly one lead, at the tenant of its own location; one first touch point
  per order, sent in that location's name (the fake SendGrid's request: the location's name as
  sender, its postal address in the body); the fourth location's orders are ignored and
  counted, by the webhook path and by the poller, and are nobody's lead;
- one customer at two locations is one customer of one business: the second location's first
  email is skipped by the frequency cap, and a change of the customer's email reaches the
  leads at both locations.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from leadctl.replay.kafka import KafkaView
from schemas.base import lead_id_for_order
from tests.conftest import ROOT, tz_at_local_hour
from tests.e2e.support import Stack
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(900)]

ORDERS_PER_LOCATION = 3  # with a webhook; plus one the webhook misses (the poller's)
NAMES = ("Tint World North", "Tint World South", "Tint World East")
#: the customers' consent: they prefer email (a customer preferring SMS, opted in to texts,
#: would rightly get the first touch as a text instead: contact_preference, tested elsewhere)
EMAIL = {"preferredContactMethod": "Email", "emailSubscribed": True}


def leadctl(stack: Stack, *args: str, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "leadctl.main", *args],
        cwd=ROOT,
        env=stack.env | env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def sim(stack: Stack, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://127.0.0.1:{stack.ports['shopmonkey']}{path}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as r:  # noqa: S310 (loopback http)
        return json.load(r)


def metric(stack: Stack, port: str, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.ports[port]}/metrics", timeout=5) as r:
        text = r.read().decode()
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}}"):
            return float(line.split()[-1])
    return 0.0


def order_sources(stack: Stack) -> dict[str, set[str]]:
    """Order id → the sources (webhook, poll) of its events in the order-events topic."""
    view = KafkaView(stack.bootstrap)
    try:
        tps = view.partitions([stack.topics.order_events])
        marks = view.watermarks(tps)
        out: dict[str, set[str]] = {}
        for tp in tps:
            for _, value, _ in view.records(tp, marks[tp][0], marks[tp][1]):
                event = json.loads(value or b"{}")
                if event.get("order"):
                    out.setdefault(event["order"]["order_id"], set()).add(event["source"])
        return out
    finally:
        view.close()


def polled_sources(stack: Stack, orders: dict[str, str]) -> list[set[str]]:
    sources = order_sources(stack)
    return [sources.get(order_id, set()) for order_id in orders]


def test_every_order_is_one_lead_at_its_own_location_sent_in_its_name(  # type: ignore[no-untyped-def]
    stack: Stack, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    emails = [f"e2e-{run}-{n}@example.com" for n in range(3 * (ORDERS_PER_LOCATION + 1))]
    shared = f"e2e-{run}-shared@example.com"  # the customer of two locations (the end)
    stack.env["LEAD_EMAIL_WHITELIST"] = ",".join([*emails, shared])  # each order its customer
    stack.env["POLL_INTERVAL_SECONDS"] = "2"
    state = tmp_path / "sim-state.json"
    stack.start(
        "shopmonkey",
        *("simulate", "shopmonkey", "--port", str(stack.ports["shopmonkey"])),
        *("--companies", "4", "--orders", "0", "--seed", str(uuid.uuid4().int % 10**6)),
        "--webhook-url",
        f"http://127.0.0.1:{stack.ports['ingest']}/webhooks/shopmonkey/companies/{{company_id}}/order",
        *("--state-file", str(state)),
    )
    stack.wait(state.exists, 60, "the simulator")
    [company] = json.loads(state.read_text())["companies"]
    *mapped, unmapped = company["locations"]

    # the operator's set-up: the company (its key and webhook secret once), three locations
    leadctl(
        stack, "companies", "add", "--id", company["company_id"], "--name", "Tint World Group",
        "--api-key-env", "SM_KEY", "--webhook-secret-env", "SM_SECRET",
        SM_KEY=company["api_key"], SM_SECRET=company["webhook_secret"],
    )  # fmt: skip
    zone = tz_at_local_hour(12)
    for n, (location, name) in enumerate(zip(mapped, NAMES, strict=True)):
        leadctl(
            stack, "tenants", "add", "--company", company["company_id"],
            "--location-id", location["location_id"], "--id", location["tenant_id"],
            "--name", name, "--timezone", zone, "--address", f"{n + 1}00 Main St, Austin TX",
        )  # fmt: skip
    tenants = {loc["tenant_id"]: (name, f"{n + 1}00 Main St, Austin TX")
               for n, (loc, name) in enumerate(zip(mapped, NAMES, strict=True))}  # fmt: skip

    for name in ("sendgrid", "twilio"):
        stack.start(name, "simulate", name, "--port", str(stack.ports[name]))
    for name in ("ingest", "sequencer", "outbound"):
        stack.start(name)
    for name in ("ingest", "sequencer", "outbound"):
        stack.wait(lambda n=name: stack.healthy(n), 120, f"{name} health")  # type: ignore[misc]
    sim(stack, "/_admin/quirks", {"ignore_location_filter": True})  # the whole table comes back
    stack.start("poller", "poller", "--tenant", mapped[0]["tenant_id"])
    stack.wait(lambda: stack.healthy("poller"), 120, "poller health")

    placed: dict[str, str] = {}  # order id → tenant id
    address = iter(emails)
    for location in mapped:
        for n in range(ORDERS_PER_LOCATION + 1):
            body = {"tenant_id": location["tenant_id"], "email": next(address), "consent": EMAIL}
            [made] = sim(stack, "/_admin/orders", body | {"webhook": n > 0})["created"]
            placed[made["order"]["id"]] = location["tenant_id"]
    strays = [
        sim(stack, "/_admin/orders", {"tenant_id": unmapped["tenant_id"]})["created"][0]
        for _ in range(2)
    ]
    stray_ids = [s["order"]["id"] for s in strays]

    ours = [uuid.UUID(t) for t in tenants]
    expected = {str(lead_id_for_order(LEAD_IDS, uuid.UUID(t), oid)): t for oid, t in placed.items()}

    def sent() -> list[dict[str, Any]]:
        return stack.rows(
            "SELECT lead_id, tenant_id, recipient, status FROM job_executions"
            " WHERE step_index = 0 AND tenant_id = ANY(%s)",
            ours,
        )

    stack.wait(
        lambda: len([r for r in sent() if r["status"] == "sent"]) >= len(placed),
        300,
        "a first touch point sent for every order",
    )
    stack.wait(
        lambda: all("poll" in found for found in polled_sources(stack, placed)),
        120,
        "the poller to read every order too",
    )
    stack.wait(
        lambda: metric(stack, "poller", "ingest_unrouted_records_total",
                       reason="unknown_location", source="poll") >= len(strays),
        60,
        "the poller to meet the unmapped location's orders",
    )  # fmt: skip
    stack.quiesce()

    # every order: exactly one lead, at its own location's tenant
    leads = stack.rows(
        "SELECT lead_id, tenant_id, shopmonkey_order_id FROM leads WHERE tenant_id = ANY(%s)",
        ours,
    )
    assert {str(r["lead_id"]): str(r["tenant_id"]) for r in leads} == expected, stack.tails()
    assert Counter(r["shopmonkey_order_id"] for r in leads) == Counter(dict.fromkeys(placed, 1))
    sources = order_sources(stack)
    assert {o: sources[o] for o in stray_ids if o in sources} == {}  # never an event
    missed = [o for o in placed if sources[o] == {"poll"}]
    assert len(missed) == 3  # the orders without a webhook: the poller's alone
    assert all(sources[o] == {"webhook", "poll"} for o in placed if o not in missed)

    # one first touch point per order, in its location's name
    rows = sent()
    assert Counter(str(r["lead_id"]) for r in rows) == Counter(dict.fromkeys(expected, 1))
    assert {r["status"] for r in rows} == {"sent"}
    mails = [
        r["payload"]
        for r in stack.requests_to("sendgrid")
        if r.get("accepted") and r["payload"]["personalizations"][0]["to"][0]["email"] in emails
    ]
    assert len(mails) == len(placed)
    by_email = {m["personalizations"][0]["to"][0]["email"]: m for m in mails}
    assert len(by_email) == len(placed)  # nobody got two
    recipient = {str(r["lead_id"]): r["recipient"] for r in rows}
    for lead_id, tenant_id in expected.items():
        name, postal = tenants[tenant_id]
        mail = by_email[recipient[lead_id]]
        assert mail["from"].get("name") == name
        text = json.dumps(mail["content"])
        assert postal in text and all(other not in text for _, other in tenants.values()
                                      if other != postal)  # fmt: skip

    # the unmapped location: ignored with its reason, counted, nobody's lead
    deliveries = sim(stack, "/_admin/deliveries")["deliveries"]
    for stray in stray_ids:
        [delivery] = [d for d in deliveries if d["record_id"] == stray]
        assert delivery["delivered"] and delivery["response"]["ignored"].startswith(
            "unknown_location"
        )
    assert metric(
        stack, "ingest-admin", "ingest_unrouted_records_total", reason="unknown_location",
        source="webhook",
    ) >= len(strays)  # fmt: skip
    assert not stack.rows("SELECT 1 FROM leads WHERE shopmonkey_order_id = ANY(%s)", stray_ids)

    # one customer, two locations, one business
    [first] = sim(
        stack,
        "/_admin/orders",
        {"tenant_id": mapped[0]["tenant_id"], "email": shared, "consent": EMAIL},
    )["created"]
    customer = first["order"]["customerId"]
    lead_a = lead_id_for_order(LEAD_IDS, uuid.UUID(mapped[0]["tenant_id"]), first["order"]["id"])

    def touch(lead: uuid.UUID) -> list[dict[str, Any]]:
        return stack.rows(
            "SELECT status, reason FROM job_executions WHERE lead_id = %s AND step_index = 0"
            " AND status <> 'claimed'",
            lead,
        )

    stack.wait(lambda: bool(touch(lead_a)), 120, "the first location's email")
    assert [r["status"] for r in touch(lead_a)] == ["sent"]
    [second] = sim(
        stack, "/_admin/orders", {"tenant_id": mapped[1]["tenant_id"], "customer_id": customer}
    )["created"]
    lead_b = lead_id_for_order(LEAD_IDS, uuid.UUID(mapped[1]["tenant_id"]), second["order"]["id"])
    stack.wait(lambda: bool(touch(lead_b)), 120, "the second location's decision")
    [decision] = touch(lead_b)
    assert decision["status"] == "skipped" and decision["reason"].startswith("frequency_cap")
    to_shared = [
        r
        for r in stack.requests_to("sendgrid")
        if r["payload"] and r["payload"]["personalizations"][0]["to"][0]["email"] == shared
    ]
    assert len(to_shared) == 1  # one business: one email to its customer today

    moved = f"e2e-{run}-moved@example.com"
    sim(stack, f"/_admin/customers/{customer}", {"email": moved})
    stack.wait(
        lambda: (
            {
                r["email"]
                for r in stack.rows(
                    "SELECT email FROM leads WHERE lead_id = ANY(%s)", [lead_a, lead_b]
                )
            }
            == {moved}
        ),
        120,
        "the customer's new email at both locations' leads",
    )
