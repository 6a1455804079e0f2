"""The Shopmonkey simulator's campaign records (reference §5): services with their
authorization, deferral and revival, served by `GET /v3/order/:id/service`; appointments listed
with the list grammar and sent as `appointment` webhooks (moves, cancellations)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import click
import pytest

from fakes.shopmonkey.cli import read_campaigns, seed_history
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


def test_history_progress_pays_or_books_a_share_and_leaves_other_runs_alone() -> None:
    """`--history-progress`: half the moved orders are paid (declined work deferred), half
    authorized with an appointment; without it, the history is the one it always was."""
    world = World(seed=5, tenants=2)
    seed_history(world, 40, timedelta(hours=24), progress=0.5)
    orders = [o for c in world.companies for o in c.orders.values()]
    paid = [o for o in orders if o["paid"]]
    booked = {a["orderId"] for c in world.companies for a in c.appointments.values()}
    assert paid and booked and not booked & {o["id"] for o in paid}
    assert 0.3 < (len(paid) + len(booked)) / len(orders) < 0.7
    assert all(o["status"] == "Invoice" and o["invoiced"] for o in paid)
    plain, before = World(seed=5, tenants=2), World(seed=5, tenants=2)
    seed_history(plain, 40, timedelta(hours=24))
    assert not any(o["paid"] or o["authorized"] for c in plain.companies for o in c.orders.values())
    for location in before.locations:  # the history as it was made before the option
        for _ in range(40):
            before.rng.random()
            before.create_order(location.company, location=location)
    # no other draw: the services and appointments of a run without the option stay the same
    assert plain.campaign_rng.getstate() == before.campaign_rng.getstate()
    assert plain.rng.getstate() == before.rng.getstate()


def test_campaigns_file_is_checked_as_the_sequencer_parses_it(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"review": {"enabled": True}, "review_url": "https://r.example"}))
    assert read_campaigns(good).review_url == "https://r.example"
    for name, text in (
        ("bad.json", "{not json"),
        ("list.json", "[]"),
        ("unknown.json", json.dumps({"reviews": {"enabled": True}})),
        ("offset.json", json.dumps({"declined": {"steps": [{"after_minutes": -1}]}})),
    ):
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(click.BadParameter) as err:
            read_campaigns(path)
        assert name in str(err.value)
