"""A Shopmonkey company with several locations through the real parts (the app, the poller's
`build_poller`, real Kafka, the test database, the simulator on real HTTP): company-global
webhooks and the poller each attribute every order to the tenant of its own location, keyed
by it on Kafka; an unmapped location's orders are answered "ignored" and never produced; the
company is read once per poll whatever its number of locations, also when the API ignores the
location filter; company changes (a new location, a deactivated one) reach the cache."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from fakes.shopmonkey.data import World
from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import WebhookSender, envelope
from schemas.base import lead_id_for_order
from schemas.events import OrderEvent
from services.common.settings import load_settings
from services.common.topics import Topics
from services.ingest.bootstrap import build_poller
from services.ingest.domain.draft import ELSEWHERE_EVENT
from services.ingest.settings import IngestSettings
from tests.integration.ingest.conftest import ProvisionFn, StartIngest, read_topic
from tests.integration.ingest.test_poller_kafka import FAST_RETRY
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("service_env")]


@pytest.fixture
async def chain() -> AsyncIterator[Simulator]:
    """A company with four locations and a single-location one (random seed)."""
    sim = await Simulator(World(seed=random.randrange(1 << 30), layout=(4, 1))).start()
    yield sim
    await sim.stop()


def events(bootstrap: str, topics: Topics) -> list[tuple[str, OrderEvent]]:
    return [
        (r.key, OrderEvent.from_bytes(r.value)) for r in read_topic(bootstrap, topics.order_events)
    ]


async def test_company_global_webhooks_land_each_order_at_its_own_location(
    topics: Topics,
    kafka_bootstrap: str,
    chain: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
    db_engine: AsyncEngine,
) -> None:
    company = chain.world.companies[0]
    mapped, unmapped = company.locations[:3], company.locations[3]
    await provision(company, locations=mapped)
    base = await start_ingest(shopmonkey_api_base_url=chain.api_base)
    sender = WebhookSender(base + "/webhooks/shopmonkey/companies/{company_id}/order")
    assert sender.company_global
    try:
        placed = {}
        # each mapped location a new customer; then each location an order of the customer
        # of the next location (who has been there only): told to that location alone
        firsts = [
            chain.world.create_order(company, location=location, email=f"first{i}@example.net")
            for i, location in enumerate(mapped)
        ]
        seconds = [
            chain.world.create_order(
                company, location=location, customer_id=firsts[(i + 1) % 3]["customerId"]
            )
            for i, location in enumerate(mapped)
        ]
        last = chain.world.create_order(company, location=unmapped, email="last@example.net")
        for order, location in zip(
            [*firsts, *seconds, last], [*mapped, *mapped, unmapped], strict=True
        ):
            delivery = await sender.send(
                company, envelope("order", "INSERT", order), location=location
            )
            placed[order["id"]] = (location, delivery)
        # a redelivery through the same company URL: still one record
        again = next(iter(placed))
        await sender.send(
            company, envelope("order", "INSERT", company.orders[again]), location=mapped[0]
        )
    finally:
        await sender.close()

    for order_id, (location, delivery) in placed.items():
        assert delivery.delivered, delivery
        if location is unmapped:
            assert delivery.response["ignored"].startswith("unknown_location"), delivery
        else:
            lead = lead_id_for_order(LEAD_IDS, location.tenant_id, order_id)
            assert delivery.response["leadId"] == str(lead)
    everything = events(kafka_bootstrap, topics)
    records = [(k, e) for k, e in everything if ELSEWHERE_EVENT not in e.event_id]
    got = {e.order.order_id: (key, e.tenant_id) for key, e in records if e.order}
    assert len(records) == len(got) == 6  # one record per mapped order, none for the unmapped
    # a new order is told to the other locations where its customer has had orders, keyed
    # by them: the first orders to nobody (new customers), each second one to one location
    told = [(k, e) for k, e in everything if ELSEWHERE_EVENT in e.event_id]
    assert all(k == str(e.tenant_id) for k, e in told)
    assert sorted((e.order.order_id, e.tenant_id) for _, e in told if e.order) == sorted(
        (order["id"], mapped[(i + 1) % 3].tenant_id) for i, order in enumerate(seconds)
    )
    # where each customer has been, as ingest recorded it (the unmapped location's: nowhere)
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT customer_id, tenant_ids FROM customer_locations WHERE company_id = :c"),
            {"c": company.company_id},
        )
        visits = {customer: set(tenants) for customer, tenants in rows}
    assert visits == {
        firsts[(i + 1) % 3]["customerId"]: {mapped[(i + 1) % 3].tenant_id, location.tenant_id}
        for i, location in enumerate(mapped)
    }
    for order_id, (location, _) in placed.items():
        if location is unmapped:
            assert order_id not in got
        else:
            tid = str(location.tenant_id)
            assert got[order_id] == (tid, location.tenant_id)  # keyed by its own tenant


async def test_one_poll_per_company_routes_by_location_even_when_the_filter_is_ignored(
    topics: Topics,
    kafka_bootstrap: str,
    chain: Simulator,
    provision: ProvisionFn,
    db_engine: AsyncEngine,
) -> None:
    company, solo = chain.world.companies
    mapped, unmapped = company.locations[:3], company.locations[3]
    await provision(company, locations=mapped)
    await provision(solo)
    for location in chain.world.locations:
        for _ in range(5):
            chain.world.create_order(location.company, location=location)
    chain.quirks.ignore_location_filter = True  # the whole table comes back
    settings = load_settings(
        IngestSettings,
        shopmonkey_api_base_url=chain.api_base,
        poll_initial_lookback_seconds=3600.0,
    )
    only = frozenset({mapped[0].tenant_id, solo.tenant_id})  # polls both companies
    async with build_poller(settings, retry=FAST_RETRY, only=only) as parts:
        results = await parts.poller.poll_all()
    assert sorted(r.company_id for r in results if r is not None) == sorted(
        [company.company_id, solo.company_id]
    )

    records = events(kafka_bootstrap, topics)
    owner = {loc.location_id: loc.tenant_id for loc in [*mapped, *solo.locations]}
    by_tenant = Counter(e.tenant_id for _, e in records if e.entity == "order")
    assert by_tenant == Counter({tid: 5 for tid in owner.values()})
    for key, event in records:
        if event.order is None or ELSEWHERE_EVENT in event.event_id:
            continue  # a customer change (fanned out to the company's tenants), or an order
            # told to the company's other locations
        order = chain.world.company(event.tenant_id).orders[event.order.order_id]
        assert order["locationId"] != unmapped.location_id
        assert owner[order["locationId"]] == event.tenant_id and key == str(event.tenant_id)
    # one read of each company's /order (two streams), whatever its number of locations
    reads = Counter(r["company_id"] for r in chain.requests if r["path"] == "/v3/order")
    assert reads == Counter({company.company_id: 2, solo.company_id: 2})
    async with db_engine.connect() as conn:  # type: ignore[attr-defined]
        kinds = (
            await conn.execute(
                text("SELECT company_id, kind FROM company_poll_cursors WHERE company_id = :c"),
                {"c": company.company_id},
            )
        ).all()
    # a cursor per table read: orders, customers, appointments
    assert sorted(k for _, k in kinds) == ["poll", "poll_appointment", "poll_customer"]


async def test_a_new_location_and_a_deactivated_one_reach_the_webhook_path(
    topics: Topics,
    kafka_bootstrap: str,
    chain: Simulator,
    provision: ProvisionFn,
    start_ingest: StartIngest,
    db_engine: AsyncEngine,
) -> None:
    company = chain.world.companies[0]
    first, second = company.locations[:2]
    await provision(company, locations=[first])
    base = await start_ingest(shopmonkey_api_base_url=chain.api_base, tenant_cache_seconds=0.2)
    sender = WebhookSender(base + "/webhooks/shopmonkey/companies/{company_id}/order")

    async def deliver(location):  # type: ignore[no-untyped-def]
        order = chain.world.create_order(company, location=location)
        done = await sender.send(company, envelope("order", "INSERT", order), location=location)
        return done.response

    try:
        assert (await deliver(second))["ignored"].startswith("unknown_location")
        await provision(company, locations=[second])  # the operator adds the location
        await wait_until(lambda: deliver(second), lambda a: "leadId" in a)
        async with db_engine.begin() as conn:  # type: ignore[attr-defined]
            await conn.execute(
                text("UPDATE tenants SET active = false WHERE id = :t"), {"t": first.tenant_id}
            )
        await wait_until(lambda: deliver(first), lambda a: "ignored" in a)
    finally:
        await sender.close()
    tenants = {e.tenant_id for _, e in events(kafka_bootstrap, topics)}
    assert second.tenant_id in tenants


async def wait_until(act, done, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while True:
        answer = await act()
        if done(answer) or time.monotonic() > deadline:
            assert done(answer), answer
            return answer
        await asyncio.sleep(0.1)
