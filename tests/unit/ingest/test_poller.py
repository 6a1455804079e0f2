"""The poller and its record reader against the simulator's world and query grammar
(in-process fakes): paging, the API's quirks, cursors, failures."""

from __future__ import annotations

import copy
import time
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from fakes.shopmonkey.data import World
from fakes.shopmonkey.webhooks import envelope
from services.ingest.errors import ShopmonkeyRejected
from services.ingest.service_layer.poller import Poller, PollerConfig
from services.ingest.service_layer.record_reader import RecordReader
from services.ingest.service_layer.seen_events import SeenEvents
from services.ingest.service_layer.webhooks import WebhookConfig, WebhookIngest
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import (
    FakeCursors,
    FakeCustomers,
    FakeLocations,
    FakeOrderSource,
    FakePublisher,
    FakeTenants,
    company_of,
    delivery,
)


class Rig:
    def __init__(
        self,
        *,
        tenants: int = 1,
        layout: tuple[int, ...] | None = None,
        unmapped: int = 0,
        null_updated: bool = True,
        **config: object,
    ) -> None:
        """`layout`: companies by number of locations; the last `unmapped` locations of the
        first company have no tenant here."""
        self.world = World(
            seed=3, tenants=tenants, layout=layout, null_updated_on_insert=null_updated
        )
        self.source = FakeOrderSource(self.world)
        self.publisher = FakePublisher()
        self.cursors = FakeCursors()
        first, *others = self.world.companies
        self.mapped = first.locations[: len(first.locations) - unmapped] + [
            loc for c in others for loc in c.locations
        ]
        self.tenants = FakeTenants(
            company_of(first, locations=self.mapped[: len(first.locations) - unmapped]),
            *(company_of(c) for c in others),
        )
        self.customers = FakeCustomers(self.world)
        self.config = PollerConfig(**{"lead_ids": LEAD_IDS, "tables": ("order",), **config})  # type: ignore[arg-type]
        self.poller = self.new_poller()

    def new_poller(self, locations: FakeLocations | None = None) -> Poller:
        """A fresh process: new reader state and empty memory; the cursors persist."""
        return Poller(
            tenants=self.tenants,
            reader=RecordReader(self.source),
            customers=self.customers,
            publisher=self.publisher,
            cursors=self.cursors,
            config=self.config,
            seen_events=SeenEvents(),
            locations=locations,
        )

    def seed(
        self,
        count: int,
        *,
        minutes_ago: float = 30,
        spacing_ms: int = 37,
        same_instant: bool = False,
    ) -> None:
        """`count` orders at every location."""
        base = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        for location in self.world.locations:
            for i in range(count):
                at = base if same_instant else base + timedelta(milliseconds=spacing_ms * i)
                self.world.create_order(location.company, created_at=at, location=location)

    def expected_ids(self, since: datetime | None = None) -> set[str]:
        ids = set()
        for company in self.world.companies:
            for order in company.orders.values():
                changed = datetime.fromisoformat(order["updatedDate"] or order["createdDate"])
                if since is None or changed >= since:
                    ids.add(f"shopmonkey:order:{order['id']}:{order['meta']['version']}")
        return ids


@pytest.mark.parametrize("null_updated", [True, False])
async def test_pages_through_more_than_one_page_exactly_once(null_updated: bool) -> None:
    rig = Rig(null_updated=null_updated)
    rig.seed(250)
    company = rig.world.companies[0]
    for order_id in list(company.orders)[:40]:  # some updated since: version 2
        rig.world.advance_order(company, order_id)
    [result] = await rig.poller.poll_all()
    assert result is not None
    times = [e.occurred_at for e in rig.publisher.events]
    assert times == sorted(times)  # produced in change order (one key: one partition, in order)
    assert len(rig.publisher.ids()) == len(set(rig.publisher.ids())) == 250
    assert set(rig.publisher.ids()) == rig.expected_ids()
    assert max(c["limit"] for c in rig.source.calls) == 100
    assert any(c["skip"] or c["where"] != rig.source.calls[0]["where"] for c in rig.source.calls)
    assert all(c["param"] == "orderby" for c in rig.source.calls)
    cursor = rig.cursors.cursors[(company.company_id, "poll")]
    assert cursor == max(
        datetime.fromisoformat(o["updatedDate"] or o["createdDate"])
        for o in company.orders.values()
    )
    # Every event has its customer's contact details (fetched: orders carry none).
    assert all(e.customer.email and e.customer.phone for e in rig.publisher.events)


async def test_many_orders_at_the_same_millisecond_are_all_read() -> None:
    rig = Rig()
    rig.seed(230, same_instant=True)
    await rig.poller.poll_all()
    assert set(rig.publisher.ids()) == rig.expected_ids() and len(rig.publisher.ids()) == 230


async def test_next_poll_reads_only_new_changes_and_restart_leaves_no_gap() -> None:
    rig = Rig()
    rig.seed(120, minutes_ago=50, spacing_ms=15_000)  # 30 minutes of history
    await rig.poller.poll_all()
    first = set(rig.publisher.ids())
    await rig.poller.poll_all()
    assert set(rig.publisher.ids()) == first and len(rig.publisher.ids()) == 120  # nothing new
    company = rig.world.companies[0]
    for _ in range(30):
        rig.world.create_order(company)
    for order_id in list(company.orders)[:10]:
        rig.world.advance_order(company, order_id)
    rig.poller = rig.new_poller()  # restart: cursor from the store, memory empty
    await rig.poller.poll_all()
    assert set(rig.publisher.ids()) == rig.expected_ids() | first
    # Only the overlap is re-read after a restart: 120 s back from the newest = 9 orders.
    assert len(rig.publisher.ids()) == 120 + 30 + 10 + 9


async def test_orders_older_than_the_window_are_not_read() -> None:
    rig = Rig(initial_lookback=600.0)
    rig.seed(20, minutes_ago=120)  # before the first poll's window
    rig.seed(5, minutes_ago=5)
    await rig.poller.poll_all()
    assert len(rig.publisher.ids()) == 5


async def test_a_dropped_filter_is_detected_and_the_result_still_correct() -> None:
    rig = Rig(initial_lookback=600.0)
    rig.seed(150, minutes_ago=120)
    rig.seed(130, minutes_ago=5)
    rig.source.ignore_filter = True
    reader = RecordReader(rig.source)
    since = datetime.now(UTC) - timedelta(minutes=10)
    report = await reader.read(company_of(rig.world.companies[0]), "order", since)
    assert report.filter_ignored and report.complete
    assert {k[0] for k in report.records} == {
        o["id"]
        for o in rig.world.companies[0].orders.values()
        if datetime.fromisoformat(o["createdDate"]) >= since
    }
    # The reference's check was made: an unfiltered call compared meta.total.
    assert any(c["where"] is None and c["limit"] == 1 for c in rig.source.calls)
    await rig.poller.poll_all()
    assert len(rig.publisher.ids()) == 130


async def test_an_ignored_orderby_is_detected_and_scanned() -> None:
    rig = Rig()
    rig.seed(260)
    company = rig.world.companies[0]
    for order_id in list(company.orders)[::3]:
        rig.world.advance_order(company, order_id)
    rig.source.ignore_orderby = True
    rig.world.rng.shuffle(order_ids := list(company.orders))
    company.orders = {k: company.orders[k] for k in order_ids}  # storage order ≠ time order
    await rig.poller.poll_all()
    assert set(rig.publisher.ids()) == rig.expected_ids()
    assert len(rig.publisher.ids()) == 260


async def test_the_camelcase_orderby_reading_is_adopted_on_400() -> None:
    rig = Rig()
    rig.seed(150)
    rig.source.camel_only = True
    await rig.poller.poll_all()
    assert set(rig.publisher.ids()) == rig.expected_ids()
    assert rig.source.calls[-1]["param"] == "orderBy"


async def test_cursor_moves_only_after_kafka_acknowledged() -> None:
    rig = Rig()
    rig.seed(10)
    tid = rig.world.companies[0].tenant_id
    cid = rig.world.companies[0].company_id
    rig.publisher.fail_tenants.add(tid)
    [result] = await rig.poller.poll_all()
    assert result is None
    assert (cid, "poll") not in rig.cursors.cursors
    assert "PublishUnavailable" in rig.cursors.errors[cid]
    rig.publisher.fail_tenants.clear()
    await rig.poller.poll_all()
    assert len(rig.publisher.ids()) == 10 and cid not in rig.cursors.errors
    assert (cid, "poll") in rig.cursors.cursors


async def test_one_companys_failure_never_stops_the_others() -> None:
    rig = Rig(tenants=3)
    rig.seed(5)
    bad = rig.world.companies[1]
    rig.source.fail_keys[bad.api_key] = ShopmonkeyRejected(401, "Unauthorized")
    results = await rig.poller.poll_all()
    assert [r is None for r in results] == [False, True, False]
    assert "ShopmonkeyRejected" in rig.cursors.errors[bad.company_id]
    produced = {e.tenant_id for e in rig.publisher.events}
    assert produced == {rig.world.companies[0].tenant_id, rig.world.companies[2].tenant_id}


async def test_poll_and_webhook_give_the_same_event_for_the_same_version() -> None:
    rig = Rig()
    company = rig.world.companies[0]
    order = rig.world.create_order(company)
    rig.world.advance_order(company, order["id"])
    webhook = WebhookIngest(
        customers=rig.customers,
        publisher=(hooked := FakePublisher()),
        config=WebhookConfig(demo_mode=False, whitelist=frozenset(), lead_ids=LEAD_IDS),
        seen_events=SeenEvents(),
    )
    headers, body = delivery(company, envelope("order", "UPDATE", copy.deepcopy(order)))
    await webhook.handle(company_of(company), headers, body, "application/json")
    await rig.poller.poll_all()
    [from_hook], [from_poll] = hooked.events, rig.publisher.events
    assert from_hook.event_id == from_poll.event_id
    assert from_hook.lead_id == from_poll.lead_id
    assert from_hook.customer == from_poll.customer
    assert from_hook.order == from_poll.order
    assert (from_hook.source.value, from_poll.source.value) == ("webhook", "poll")


async def test_demo_mode_in_the_poller() -> None:
    rig = Rig(demo_mode=True, whitelist=frozenset({"sam@example.com"}))
    company = rig.world.companies[0]
    keep = rig.world.add_customer(company, email="sam@example.com")
    rig.world.create_order(company, customer_id=keep["id"])
    rig.seed(5)
    await rig.poller.poll_all()
    assert [e.customer.email for e in rig.publisher.events] == ["sam@example.com"]


async def test_customer_changes_are_polled_too() -> None:
    rig = Rig()
    rig.poller = Poller(
        tenants=rig.tenants,
        reader=RecordReader(rig.source),
        customers=rig.customers,
        publisher=rig.publisher,
        cursors=rig.cursors,
        config=PollerConfig(lead_ids=LEAD_IDS, tables=("order", "customer")),
    )
    company = rig.world.companies[0]
    order = rig.world.create_order(company)
    rig.world.update_customer(company, order["customerId"], {"email": "moved@example.org"})
    await rig.poller.poll_all()
    entities = sorted((e.entity, e.customer.email) for e in rig.publisher.events)
    assert ("customer", "moved@example.org") in entities
    assert (company.company_id, "poll_customer") in rig.cursors.cursors


async def test_run_loop_stops_promptly() -> None:
    import asyncio

    rig = Rig(interval=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(rig.poller.run(stop))
    started = time.monotonic()
    while rig.poller.cycles < 3 and time.monotonic() - started < 5:
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 2)
    assert rig.poller.cycles >= 3


# companies with several locations ---------------------------------------------------------------
def unrouted(source: str, reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "ingest_unrouted_records_total", {"source": source, "reason": reason}
    )
    return value or 0.0


async def test_a_polled_new_order_is_told_only_where_its_customer_has_had_orders() -> None:
    """The poller, like the webhook path, tells a new order of a known customer to the
    locations where the customer has been, recorded as orders come (by either path)."""
    rig = Rig(layout=(3,))
    locations = FakeLocations()
    rig.poller = rig.new_poller(locations)
    chain = rig.world.companies[0]
    first, second, third = chain.locations
    earlier = datetime.now(UTC) - timedelta(minutes=10)
    order = rig.world.create_order(
        chain, location=first, email="back@example.net", created_at=earlier
    )
    await rig.poller.poll_all()
    assert rig.publisher.elsewhere == []
    back = rig.world.create_order(chain, location=second, customer_id=order["customerId"])
    await rig.poller.poll_all()
    assert [(e.order.order_id, e.tenant_id) for e in rig.publisher.elsewhere if e.order] == [
        (back["id"], first.tenant_id)
    ]
    assert locations.rows[(chain.company_id, order["customerId"])] == {
        first.tenant_id,
        second.tenant_id,
    }
    assert third.tenant_id not in {e.tenant_id for e in rig.publisher.elsewhere}


@pytest.mark.parametrize("location_filter_ignored", [False, True])
async def test_one_read_per_company_routes_every_order_to_its_own_location(
    location_filter_ignored: bool,
) -> None:
    """A company with four locations (three tenants here) and a single-location one: each is
    read once per cycle with its key; every order becomes one event at the tenant of its own
    location, the unmapped location's orders none (counted), whether or not the API honours
    the location filter (an invalid one returns every location's orders, reference §3)."""
    rig = Rig(layout=(4, 1), unmapped=1)
    rig.source.ignore_location_filter = location_filter_ignored
    rig.seed(20)  # 80 orders at chain: one page each, whether filtered by location or not
    chain, solo = rig.world.companies
    before = unrouted("poll", "unknown_location")
    results = await rig.poller.poll_all()
    assert [r is not None for r in results] == [True, True]
    owner = {loc.location_id: loc.tenant_id for loc in rig.mapped}
    expected = {
        order["id"]: owner[order["locationId"]]
        for company in rig.world.companies
        for order in company.orders.values()
        if order["locationId"] in owner
    }
    got = [(e.order.order_id, e.tenant_id) for e in rig.publisher.own if e.order]
    assert len(got) == len(expected) == 4 * 20  # three of chain's locations and solo's one
    assert dict(got) == expected
    # each new order of chain's is told to its two other locations here, never to solo
    told = [(e.order.order_id, e.tenant_id) for e in rig.publisher.elsewhere if e.order]
    assert len(told) == 2 * 3 * 20 and {t for _, t in told} == set(owner.values()) - {
        solo.locations[0].tenant_id
    }
    assert all(expected[order_id] != tenant for order_id, tenant in told)
    # asked for the mapped locations only; when the API ignores that, the rest is counted
    assert unrouted("poll", "unknown_location") == before + (20 if location_filter_ignored else 0)
    # one read per company and stream (updatedDate, created-never-updated): not per location
    for company in (chain, solo):
        calls = [c for c in rig.source.calls if c["key"] == company.api_key]
        assert len([c for c in calls if c["where"] is not None]) == 2, calls
    mapped_chain = sorted(loc.location_id for loc in chain.locations[:3])
    asked = [c["where"]["locationId"] for c in rig.source.calls if c["key"] == chain.api_key]
    assert asked and all(w == {"in": mapped_chain} for w in asked if w is not None)
    assert (chain.company_id, "poll") in rig.cursors.cursors
    assert {k[0] for k in rig.cursors.cursors} == {chain.company_id, solo.company_id}


async def test_a_polled_customer_change_reaches_every_location_of_its_company() -> None:
    rig = Rig(layout=(3,), tables=("order", "customer"))
    chain = rig.world.companies[0]
    order = rig.world.create_order(chain, location=chain.locations[1])
    rig.world.update_customer(chain, order["customerId"], {"email": "moved@example.org"})
    await rig.poller.poll_all()
    changes = [e for e in rig.publisher.own if e.entity == "customer"]
    assert sorted(e.tenant_id for e in changes) == sorted(loc.tenant_id for loc in chain.locations)
    assert len({e.event_id for e in changes}) == 1
    assert {e.customer.email for e in changes} == {"moved@example.org"}
    [placed] = [e for e in rig.publisher.events if e.entity == "order"]
    assert placed.tenant_id == chain.locations[1].tenant_id


async def test_orders_of_another_company_in_an_answer_are_never_attributed() -> None:
    """An API answer carrying another company's order (a proxy mix-up, a shared key) is
    routed by the order's own companyId: to nobody."""
    rig = Rig(layout=(2, 1))
    chain, solo = rig.world.companies
    stray = rig.world.create_order(solo)
    chain.orders[stray["id"]] = stray  # served under chain's key
    rig.source.ignore_location_filter = True  # and not filtered out by its locationId
    before = unrouted("poll", "other_company")
    await rig.poller.poll_all()
    events = [e for e in rig.publisher.own if e.order and e.order.order_id == stray["id"]]
    assert [e.tenant_id for e in events] == [solo.tenant_id]  # from solo's own read only
    assert unrouted("poll", "other_company") == before + 1
