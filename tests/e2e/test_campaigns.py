"""Campaigns after the estimate, end to end on the real stack (the same one as the provider
signals' tests: `leadctl ingest`, `sequencer` and `outbound` as processes, real Kafka and
PostgreSQL, the fake SendGrid and Twilio): signed Shopmonkey webhooks in, provider requests
out. Each tenant turns the campaign on with a plan in minutes, not days.

- declined work: an invoiced order with a declined service gets its follow-up; once a later
  order of the customer revives the service, nothing more goes;
- review request: a paid order (its webhook delivered again, and updated again) gets exactly
  one request, with the location's review URL;
- appointment reminder: an appointment moved twice gets one reminder, for its last start, at
  that start minus the plan's offset;
- after each, every campaign command of the lead re-emitted (a replay that is NOT
  record-only, the worst case) sends nothing new.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.base import Channel, command_id_for
from schemas.events import Recipient, TouchPointCommand
from tests.e2e.test_provider_signals import Person, Stack, stack, wait_for

__all__ = ["stack"]  # the module's fixture: a stack of its own for these tests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

#: the estimate nurture plan's first step is hours away: only campaigns send in these tests
QUIET_NURTURE = [{"after_minutes": 600, "channel": "email", "template": "nurture_email_welcome"}]
REVIEW_URL = "https://g.page/r/e2e-shop/review"


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def campaign_tenant(stack: Stack, plans: dict[str, Any]) -> uuid.UUID:
    tenant, _, _ = stack.tenant(QUIET_NURTURE)
    stack.sql(
        "UPDATE tenants SET campaign_plans = %s, review_url = %s WHERE id = %s",
        json.dumps(plans),
        REVIEW_URL,
        tenant,
    )
    return tenant


class Orders:
    """Signed order and appointment webhooks of one customer of one tenant."""

    def __init__(self, stack: Stack, tenant: uuid.UUID, person: Person) -> None:
        self.stack, self.tenant, self.person = stack, tenant, person
        self.customer_id = f"cus_{uuid.uuid4().hex[:12]}"
        self.version = int(time.time() * 1000)

    def _deliver(self, table: str, operation: str, data: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        data["meta"] = {"version": self.version}
        doc = {"apiVersion": "3", "operation": operation, "table": table, "data": data}
        status, raw = self.stack.shopmonkey_webhook(self.tenant, doc)
        assert status in (200, 202), raw
        answer: dict[str, Any] = json.loads(raw)
        return answer

    def order(
        self,
        order_id: str,
        operation: str,
        *,
        created: datetime,
        status: str = "Estimate",
        services: list[dict[str, Any]] | None = None,
        **flags: bool,
    ) -> uuid.UUID:
        data = {
            "id": order_id,
            "number": str(uuid.uuid4().int % 100_000),
            "companyId": f"co_{self.tenant.hex[:8]}",
            "locationId": f"loc_{self.tenant.hex[:8]}",
            "customerId": self.customer_id,
            "status": status,
            "createdDate": _iso(created),
            "updatedDate": _iso(datetime.now(UTC)),
            "totalCostCents": 42_000,
            "authorized": False,
            "invoiced": False,
            "paid": False,
            "archived": False,
            "deleted": False,
            "generatedVehicleName": "2019 Honda Civic",
            "customer": {
                "id": self.customer_id,
                "firstName": "Sam",
                "lastName": "Tester",
                "emails": [{"email": self.person.email, "primary": True, "subscribed": True}],
                "phoneNumbers": [
                    {"number": self.person.phone, "primary": True, "optIn": True, "type": "Mobile"}
                ],
                "marketingOptIn": True,
                "preferredContactMethod": "All",
            },
            **flags,
        }
        if services is not None:
            data["services"] = services

        # a location added a moment ago, maybe before ingest read its notification: its order
        # is routed all the same, never acknowledged unrouted (Shopmonkey would not resend it)
        answer = self._deliver("order", operation, dict(data))
        assert "leadId" in answer, answer
        return uuid.UUID(answer["leadId"])

    def appointment(
        self, appointment_id: str, order_id: str, operation: str, start: datetime
    ) -> None:
        self._deliver(
            "appointment",
            operation,
            {
                "id": appointment_id,
                "companyId": f"co_{self.tenant.hex[:8]}",
                "locationId": f"loc_{self.tenant.hex[:8]}",
                "customerId": self.customer_id,
                "orderId": order_id,
                "startDate": _iso(start),
                "endDate": _iso(start + timedelta(hours=1)),
                "sendReminder": False,
                "cancelationNote": None,
                "createdDate": _iso(datetime.now(UTC)),
                "updatedDate": _iso(datetime.now(UTC)),
            },
        )


def ledger(stack: Stack, lead: uuid.UUID) -> list[tuple[Any, ...]]:
    """(campaign, step, channel, status, reason, due_at, command_id) of the lead's commands."""
    return stack.sql(
        "SELECT campaign, step_index, channel, status, reason, due_at, command_id"
        " FROM job_executions WHERE lead_id = %s ORDER BY claimed_at",
        lead,
    )


def emails(stack: Stack, person: Person, subject: str) -> list[dict[str, Any]]:
    return [m for m in stack.email_to(person.email) if subject in str(m.get("subject"))]


def test_declined_work_is_followed_up_until_a_later_order_revives_it(stack: Stack) -> None:
    person = stack.person()
    tenant = campaign_tenant(
        stack,
        {
            "declined": {
                "steps": [
                    {"after_minutes": 0, "channel": "email", "template": "declined_email_first"},
                    {"after_minutes": 1, "channel": "email", "template": "declined_email_last"},
                ]
            }
        },
    )
    orders = Orders(stack, tenant, person)
    created = datetime.now(UTC) - timedelta(days=1)
    lead = orders.order("o-declined", "INSERT", created=created)
    declined = {
        "id": "svc-brakes",
        "name": "Brake pads",
        "authorizationStatus": "Declined",
        "totalCents": 32_000,
    }
    orders.order(
        "o-declined",
        "UPDATE",
        created=created,
        status="Invoice",
        invoiced=True,
        services=[declined],
    )
    first = wait_for("the first follow-up", lambda: emails(stack, person, "recommended"))
    assert len(first) == 1 and "Brake pads" in json.dumps(first[0])

    def recorded() -> list[tuple[Any, ...]] | None:  # outbound records it once SendGrid answered
        rows = [(r[0], r[1], r[3]) for r in ledger(stack, lead)]
        return rows if rows and rows[-1][2] != "claimed" else None

    assert wait_for("the ledger to record the send", recorded) == [("declined", 0, "sent")]
    # the customer comes back: a later order revives the declined service
    orders.order(
        "o-revival",
        "INSERT",
        created=datetime.now(UTC),
        services=[
            {
                "id": "svc-brakes-2",
                "name": "Brake pads",
                "authorizationStatus": "Authorized",
                "revivedFromId": "svc-brakes",
            }
        ],
    )
    time.sleep(75)  # the second follow-up fell due a minute after the first
    assert len(emails(stack, person, "recommended")) + len(emails(stack, person, "Still")) == 1
    assert [(r[0], r[1]) for r in ledger(stack, lead)] == [("declined", 0)]
    replay_sends_nothing(stack, lead, person)


def test_a_paid_order_gets_exactly_one_review_request(stack: Stack) -> None:
    person = stack.person()
    tenant = campaign_tenant(
        stack, {"review": {"steps": [{"after_minutes": 0, "template": "review_request"}]}}
    )
    orders = Orders(stack, tenant, person)
    created = datetime.now(UTC) - timedelta(hours=3)
    lead = orders.order("o-paid", "INSERT", created=created)
    for _ in range(3):  # paid, then updated again twice (each a new version)
        orders.order(
            "o-paid", "UPDATE", created=created, status="Invoice", invoiced=True, paid=True
        )
    sent = wait_for("the review request", lambda: emails(stack, person, "How did we do"))
    time.sleep(8)  # ticks every second: a second request would be out by now
    assert len(emails(stack, person, "How did we do")) == len(sent) == 1
    assert REVIEW_URL in json.dumps(sent[0])
    assert [(r[0], r[1], r[3]) for r in ledger(stack, lead)] == [("review", 0, "sent")]
    replay_sends_nothing(stack, lead, person)


def test_an_appointment_moved_twice_gets_one_reminder_for_its_last_start(stack: Stack) -> None:
    person = stack.person()
    tenant = campaign_tenant(
        stack,
        {
            "appointment": {
                "steps": [
                    {"after_minutes": -2, "channel": "email", "template": "appointment_reminder"}
                ]
            }
        },
    )
    orders = Orders(stack, tenant, person)
    now = datetime.now(UTC).replace(microsecond=0)
    lead = orders.order("o-appt", "INSERT", created=now)
    orders.appointment("ap-1", "o-appt", "INSERT", now + timedelta(hours=3))
    orders.appointment("ap-1", "o-appt", "UPDATE", now + timedelta(hours=5))
    last = now + timedelta(minutes=2, seconds=20)  # its reminder falls due in 20 s
    orders.appointment("ap-1", "o-appt", "UPDATE", last)
    wait_for("the reminder", lambda: emails(stack, person, "See you"))
    time.sleep(8)
    assert len(emails(stack, person, "See you")) == 1
    (row,) = ledger(stack, lead)
    campaign, step, channel, status, _, due_at, command_id = row
    assert (campaign, step, channel, status) == (
        f"appointment:ap-1@{int(last.timestamp())}",
        0,
        "email",
        "sent",
    )
    assert due_at == last - timedelta(minutes=2)  # the window is open: exactly its offset
    assert command_id == command_id_for(lead, 0, Channel.EMAIL, campaign)
    replay_sends_nothing(stack, lead, person)


def replay_sends_nothing(stack: Stack, lead: uuid.UUID, person: Person) -> None:
    """The worst case of a replay: each of the lead's campaign commands issued again NOT
    record-only; the ledger answers every one as a duplicate, nothing new is sent."""
    rows = stack.sql(
        "SELECT j.command_id, j.tenant_id, j.step_index, j.channel, j.template, j.due_at,"
        " j.campaign, j.status FROM job_executions j"
        " WHERE j.lead_id = %s AND j.campaign IS NOT NULL",
        lead,
    )
    assert rows
    before = len(stack.email_to(person.email))
    for cid, tenant, step, channel, template, due, campaign, _ in rows:
        stack.reemit(
            TouchPointCommand(
                command_id=cid,
                tenant_id=tenant,
                lead_id=lead,
                step_index=step,
                channel=Channel(channel),
                template=template,
                due_at=due,
                issued_at=datetime.now(UTC),
                recipient=Recipient(email=person.email, phone=person.phone, first_name="Sam"),
                campaign=campaign,
            )
        )
    time.sleep(8)
    assert len(stack.email_to(person.email)) == before
    after = stack.sql(
        "SELECT command_id, status FROM job_executions WHERE lead_id = %s AND campaign IS NOT NULL",
        lead,
    )
    assert sorted(after) == sorted((r[0], r[7]) for r in rows)
