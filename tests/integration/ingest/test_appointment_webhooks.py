"""Shopmonkey `appointment` webhooks through the real ingest app (company-global URL, real
Kafka, the test database, the simulator): an appointment is its order's lead's event, routed
by its own location; a move and a cancellation are events of their own; an appointment
without an order is acknowledged and ignored, nothing on the topic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import envelope, signed_headers
from schemas.base import lead_id_for_order
from schemas.events import OrderEvent
from services.common.topics import Topics
from tests.integration.ingest.conftest import ProvisionFn, StartIngest, read_topic
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = pytest.mark.integration


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as http, http.post(url, data=body, headers=headers) as r:
        return r.status, await r.json()


async def test_appointment_webhooks_are_events_of_their_orders_lead(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    world = simulator.world
    company = world.companies[0]
    await provision(company)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    url = f"{base}/webhooks/shopmonkey/companies/{company.company_id}/order"

    async def deliver(operation: str, record: dict, diff: list[str] | None = None) -> dict:
        body = json.dumps(envelope("appointment", operation, record, diff)).encode()
        status, answer = await post(url, body, signed_headers(company, body))
        assert status in (200, 202), answer
        return answer

    order = world.create_order(company)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    booked = world.create_appointment(company, order["id"], start=start, send_reminder=True)
    lead_id = lead_id_for_order(LEAD_IDS, company.tenant_id, order["id"])
    first = await deliver("INSERT", booked)
    assert first["leadId"] == str(lead_id)
    assert first["eventId"] == f"shopmonkey:appointment:{booked['id']}:1"
    assert (await deliver("INSERT", booked))["eventId"] == first["eventId"]  # a redelivery
    moved, diff = world.move_appointment(company, booked["id"], start + timedelta(days=1))
    await deliver("UPDATE", moved, diff)
    cancelled, diff = world.cancel_appointment(company, booked["id"])
    await deliver("UPDATE", cancelled, diff)

    orphan = world.create_appointment(company, order["id"])
    orphan["orderId"] = None  # booked without an order: no lead to remind
    ignored = await deliver("INSERT", orphan)
    assert "without orderId" in ignored["ignored"]

    records = read_topic(kafka_bootstrap, topics.order_events)
    assert {r.key for r in records} == {str(company.tenant_id)}
    events = [OrderEvent.from_bytes(r.value) for r in records]
    assert [e.event_id for e in events] == [
        f"shopmonkey:appointment:{booked['id']}:{v}" for v in (1, 2, 3)
    ]
    assert all(e.entity == "appointment" and e.lead_id == lead_id for e in events)
    assert all(e.order is None and e.source.value == "webhook" for e in events)
    assert [e.operation.value for e in events] == ["insert", "update", "update"]
    appointments = [e.appointment for e in events]
    assert all(a is not None and a.appointment_id == booked["id"] for a in appointments)
    assert [(a.start_at, a.cancelled, a.shopmonkey_reminder) for a in appointments if a] == [
        (start, False, True),
        (start + timedelta(days=1), False, True),
        (start + timedelta(days=1), True, True),
    ]
    # the customer's contact completed as for an order (the customer look-up)
    customer = company.customers[order["customerId"]]
    assert events[0].customer.email == customer["emails"][0]["email"]
    # the record on the topic is the contract, byte for byte
    assert records[0].value == events[0].model_dump_json().encode()


async def test_appointments_of_an_unmapped_location_and_deletes(
    topics: Topics,
    kafka_bootstrap: str,
    simulator: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
) -> None:
    world = simulator.world
    company = world.companies[0]
    await provision(company)
    base = await start_ingest(shopmonkey_api_base_url=simulator.api_base)
    url = f"{base}/webhooks/shopmonkey/companies/{company.company_id}/order"
    order = world.create_order(company)
    booked = world.create_appointment(company, order["id"])
    elsewhere = {**booked, "id": "appt-elsewhere", "locationId": "loc_not_ours"}
    body = json.dumps(envelope("appointment", "INSERT", elsewhere)).encode()
    status, answer = await post(url, body, signed_headers(company, body))
    assert status == 202 and "unknown_location" in answer["ignored"]
    deleted = world.delete_appointment(company, booked["id"])
    body = json.dumps(envelope("appointment", "DELETE", deleted)).encode()
    status, answer = await post(url, body, signed_headers(company, body))
    assert status == 200, answer
    [record] = read_topic(kafka_bootstrap, topics.order_events)
    event = OrderEvent.from_bytes(record.value)
    assert event.operation.value == "delete" and event.appointment is not None
    assert event.appointment.cancelled
    assert event.lead_id == lead_id_for_order(LEAD_IDS, company.tenant_id, order["id"])
