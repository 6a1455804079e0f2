"""The poller and the backfill read an invoiced or paid order's services from the simulator's
`GET /v3/order/:id/service` (real HTTP, the real Shopmonkey client; ports faked) into its
service lines, and the poller reads appointments changed since its cursor."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fakes.shopmonkey.data import World
from fakes.shopmonkey.server import Simulator
from schemas.base import lead_id_for_order
from schemas.events import ServiceAuthorization
from services.ingest.adapters.order_services import ShopmonkeyOrderServices
from services.ingest.adapters.shopmonkey_client import Retries, ShopmonkeyClient
from services.ingest.service_layer.backfill import Backfill
from services.ingest.service_layer.poller import Poller, PollerConfig
from services.ingest.service_layer.record_reader import RecordReader
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import (
    FakeCursors,
    FakeCustomers,
    FakePublisher,
    FakeTenants,
    company_of,
)
from tests.unit.ingest.test_backfill_paging import FakeCursors as FakeBackfillCursors

pytestmark = pytest.mark.integration


def _invoiced_with_declined_work(world: World) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A company, an order of it taken to paid with at least one declined service, and an
    estimate."""
    company = world.companies[0]
    while True:
        order = world.create_order(company, created_at=datetime.now(UTC) - timedelta(minutes=5))
        for _ in range(4):  # authorized, RepairOrder, Invoice, paid
            world.advance_order(company, order["id"])
        if any(s["authorizationStatus"] == "Declined" for s in company.services[order["id"]]):
            break
    estimate = world.create_order(company)
    return company, order, estimate


@pytest.fixture
async def sim() -> Any:
    simulator = await Simulator(World(seed=random.randrange(1 << 30), tenants=1)).start()
    client = await ShopmonkeyClient(
        simulator.api_base, timeout=5.0, retry=Retries(attempts=3, base=0.01)
    ).start()
    yield simulator, client
    await client.close()
    await simulator.stop()


def _expected_lines(services: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            s["id"],
            ServiceAuthorization(
                {"Authorized": "authorized", "Declined": "declined"}[s["authorizationStatus"]]
            ),
            bool(s["deferredReason"]) and not s["excludedFromDeferred"],
            s["totalCents"],
        )
        for s in services
    ]


async def test_the_poller_reads_services_of_invoiced_orders_and_appointments(sim: Any) -> None:
    simulator, client = sim
    world = simulator.world
    company, paid, estimate = _invoiced_with_declined_work(world)
    booked = world.create_appointment(company, estimate["id"], send_reminder=True)
    simulator.rate_limits.append(0.01)  # one 429 on the way: retried by the client
    publisher = FakePublisher()
    poller = Poller(
        tenants=FakeTenants(company_of(company)),
        reader=RecordReader(client),
        customers=FakeCustomers(world),
        publisher=publisher,
        cursors=FakeCursors(),
        config=PollerConfig(lead_ids=LEAD_IDS),
        services=ShopmonkeyOrderServices(client),
    )
    # the webhook of the paid order's last change was ingested already, under its plain id
    plain = f"shopmonkey:order:{paid['id']}:{paid['meta']['version']}"
    poller._seen_events.add(plain, lead_id_for_order(LEAD_IDS, company.tenant_id, paid["id"]))
    [result] = await poller.poll_all()
    assert result is not None
    by_id = {e.event_id: e for e in publisher.events}
    version = paid["meta"]["version"]
    # an event of its own (the webhook of the same change, without services, has the plain id)
    polled = by_id[f"shopmonkey:order:{paid['id']}:{version}:services"].order
    assert f"shopmonkey:order:{paid['id']}:{version}" not in by_id
    assert polled is not None and polled.paid
    got = [(x.service_id, x.authorization, x.deferred, x.total_cents) for x in polled.service_lines]
    assert got == _expected_lines(company.services[paid["id"]])
    assert any(x.authorization is ServiceAuthorization.DECLINED for x in polled.service_lines)
    assert polled.services == []  # the names list: the order's body (which nests none)
    unread = by_id[f"shopmonkey:order:{estimate['id']}:1"].order
    assert unread is not None and unread.service_lines == []  # an estimate: not read
    reads = [r["path"] for r in simulator.requests if r["path"].endswith("/service")]
    paid_orders = [o["id"] for o in company.orders.values() if o["paid"]]
    assert paid["id"] in paid_orders and estimate["id"] not in paid_orders
    assert sorted(reads) == sorted(f"/v3/order/{oid}/service" for oid in paid_orders)
    appointment = by_id[f"shopmonkey:appointment:{booked['id']}:1"]
    assert appointment.entity == "appointment" and appointment.source.value == "poll"
    assert appointment.lead_id == lead_id_for_order(LEAD_IDS, company.tenant_id, estimate["id"])
    assert appointment.appointment is not None and appointment.appointment.shopmonkey_reminder
    # the next cycle reads nothing again (cursors per table, seen events)
    count = len(publisher.events)
    await poller.poll_all()
    assert len(publisher.events) == count


async def test_the_backfill_reads_services_of_invoiced_orders(sim: Any) -> None:
    simulator, client = sim
    world = simulator.world
    company, paid, _ = _invoiced_with_declined_work(world)
    ingest_company = company_of(company)
    publisher = FakePublisher()
    backfill = Backfill(
        company=ingest_company,
        tenant=ingest_company.tenants[0],
        since=datetime.now(UTC) - timedelta(days=1),
        reader=RecordReader(client),
        customers=FakeCustomers(world),
        publisher=publisher,
        cursors=FakeBackfillCursors(),  # type: ignore[arg-type]
        max_age=timedelta(days=30),
        lead_ids=LEAD_IDS,
        services=ShopmonkeyOrderServices(client),
    )
    position = await backfill.run()
    assert position.status == "done"
    [event] = [e for e in publisher.events if e.order and e.order.order_id == paid["id"]]
    assert event.order is not None
    got = [
        (x.service_id, x.authorization, x.deferred, x.total_cents)
        for x in event.order.service_lines
    ]
    assert got == _expected_lines(company.services[paid["id"]])
    assert uuid.UUID(str(event.lead_id)) == lead_id_for_order(
        LEAD_IDS, company.tenant_id, paid["id"]
    )
