"""The Shopmonkey simulator's campaign records (reference §5): services with their
authorization, deferral and revival, served by `GET /v3/order/:id/service`; appointments listed
with the list grammar and sent as `appointment` webhooks (moves, cancellations)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from fakes.shopmonkey.data import World
from fakes.shopmonkey.server import Simulator


def test_services_are_decided_deferred_and_revived_without_changing_old_draws() -> None:
    world = World(seed=11, tenants=1)
    company = world.companies[0]
    first = world.create_order(company)
    assert "services" not in first  # not nested, as the real API
    customer = first["customerId"]
    declined = 0
    for _ in range(30):  # the customer's orders taken to invoice until work was deferred
        order = world.create_order(company, customer_id=customer)
        for _ in range(3):
            world.advance_order(company, order["id"])
        lines = company.services[order["id"]]
        assert sum(s["totalCents"] for s in lines) == order["totalCostCents"]
        assert all(s["authorizationStatus"] in ("Authorized", "Declined") for s in lines)
        for s in lines:
            if s["authorizationStatus"] == "Declined":
                declined += 1
                assert s["deferredReason"] == "Declined" and s["deferredDate"]
    assert declined
    revived = [
        s for lines in company.services.values() for s in lines if s["revivedFromId"] is not None
    ]
    assert revived, "a later order of the customer brings deferred work back"
    earlier = {s["id"]: s for lines in company.services.values() for s in lines}
    for s in revived:
        assert s["revived"] and earlier[s["revivedFromId"]]["deferredReason"]
        assert s["name"] == earlier[s["revivedFromId"]]["name"]
    embedded = World(seed=11, tenants=1, embed_services=True)
    order = embedded.create_order(embedded.companies[0])
    assert order["services"] == embedded.companies[0].services[order["id"]]
    times = ("createdDate", "orderCreatedDate", "services")
    assert {k: v for k, v in order.items() if k not in times} == {
        k: v for k, v in first.items() if k not in times
    }  # the same draws


async def test_services_and_appointments_over_http_and_as_webhooks() -> None:
    received: list[dict[str, Any]] = []

    class Sender:
        async def send(self, company: Any, doc: dict[str, Any], **_: Any) -> None:
            received.append(doc)

        async def close(self) -> None:
            pass

    world = World(seed=5, tenants=1)
    sim = await Simulator(world, sender=Sender()).start()  # type: ignore[arg-type]
    company = world.companies[0]
    auth = {"Authorization": f"Bearer {company.api_key}"}
    try:
        order = world.create_order(company)
        start = datetime(2030, 1, 2, 15, tzinfo=UTC)
        booked = await sim.create_appointment(company, order["id"], start=start, send_reminder=True)
        later = datetime.now(UTC)
        await sim.move_appointment(company, booked["id"], start + timedelta(days=1))
        other = await sim.create_appointment(company, order["id"], webhook=False)
        await sim.cancel_appointment(company, other["id"])
        async with aiohttp.ClientSession(headers=auth) as http:
            async with http.get(f"{sim.api_base}/order/{order['id']}/service") as resp:
                assert resp.status == 200
                assert (await resp.json())["data"] == company.services[order["id"]]
            async with http.get(f"{sim.api_base}/order/nope/service") as resp:
                assert resp.status == 404
            since = (later - timedelta(seconds=1)).isoformat()
            where = json.dumps({"updatedDate": {"gte": since}, "locationId": company.location_id})
            async with http.get(f"{sim.api_base}/appointment", params={"where": where}) as resp:
                listed = (await resp.json())["data"]
            async with http.get(f"{sim.api_base}/appointment/{booked['id']}") as resp:
                assert (await resp.json())["data"]["startDate"] == "2030-01-03T15:00:00.000Z"
    finally:
        await sim.stop()
    assert sorted(a["id"] for a in listed) == sorted([booked["id"], other["id"]])
    assert [(d["table"], d["operation"]) for d in received] == [
        ("appointment", "INSERT"),
        ("appointment", "UPDATE"),
        ("appointment", "UPDATE"),
    ]
    assert received[0]["data"]["sendReminder"] is True
    assert received[1]["diff"] == ["startDate", "endDate", "updatedDate"]
    assert received[2]["data"]["cancelationNote"]
