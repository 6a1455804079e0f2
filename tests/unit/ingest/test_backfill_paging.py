"""Backfill paging with hand-written fakes: keyset on createdDate with ties across pages, the
cursor moves only after every event of a page was acknowledged, old orders plan nothing, and
a filter the API ignored is refused rather than guessed around."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas.events import OrderEvent
from services.common.rate_limiter import RateLimiter
from services.ingest.domain.draft import ELSEWHERE_EVENT, OrderEventDraft
from services.ingest.domain.model import BackfillPosition, IngestCompany, IngestTenant, Page
from services.ingest.domain.normalise import iso_z, parse_ts
from services.ingest.domain.shopmonkey_signatures import WebhookKeys
from services.ingest.errors import BackfillError
from services.ingest.service_layer.backfill import Backfill
from services.ingest.service_layer.record_reader import RecordReader
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import FakeLocations

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _order(i: int, created: datetime) -> dict[str, Any]:
    return {
        "id": f"order-{i}",
        "number": str(1000 + i),
        "status": "Estimate",
        "companyId": "co_1",
        "locationId": "loc_1",
        "customerId": f"c{i}",
        "createdDate": iso_z(created),
        "updatedDate": None,
        "generatedCustomerName": "Jane Doe",
        "customer": {"id": f"c{i}", "emails": [{"email": f"c{i}@x.io", "primary": True}]},
        "meta": {"version": 1},
    }


class FakeApi:
    def __init__(self, orders: list[dict[str, Any]], *, ignore_filter: bool = False) -> None:
        self.orders = orders
        self.ignore_filter = ignore_filter
        self.calls: list[tuple[str, int]] = []
        self.locations: list[object] = []  # the location filter asked for (never applied)

    async def list_records(self, api_key: str, table: str, **kw: Any) -> Page:
        self.locations.append(kw["where"].get("locationId"))
        lower = parse_ts(kw["where"]["createdDate"]["gte"])
        assert lower is not None
        self.calls.append((kw["where"]["createdDate"]["gte"], kw["skip"]))
        rows = sorted(self.orders, key=lambda o: o["createdDate"])
        if not self.ignore_filter:
            rows = [o for o in rows if parse_ts(o["createdDate"]) >= lower]  # type: ignore[operator]
        page = rows[kw["skip"] : kw["skip"] + kw["limit"]]
        return Page(page, len(rows), kw["skip"] + len(page) < len(rows))


class FakeCustomers:
    async def customer(self, company: Any, customer_id: str, *, fresh: bool = False) -> None:
        return None


class FakePublisher:
    def __init__(self, fail_after: int | None = None) -> None:
        self.events: list[OrderEvent] = []
        self.fail_after = fail_after

    async def publish(self, event: OrderEventDraft) -> None:
        if self.fail_after is not None and len(self.events) >= self.fail_after:
            raise RuntimeError("kafka down")
        self.events.append(OrderEvent.from_bytes(event.to_bytes()))  # what the topic would hold


class FakeCursors:
    def __init__(self) -> None:
        self.cursor: BackfillPosition | None = None
        self.advances: list[BackfillPosition] = []

    async def load(self, tenant_id: uuid.UUID, since: datetime) -> BackfillPosition | None:
        return self.cursor

    async def start(
        self, tenant_id: uuid.UUID, since: datetime, *, restart: bool
    ) -> BackfillPosition:
        if self.cursor is None or restart:
            self.cursor = BackfillPosition(since, 0, 0, 0, "running")
        return BackfillPosition(**vars(self.cursor))

    async def advance(
        self, tenant_id: uuid.UUID, since: datetime, cursor: BackfillPosition, *, done: bool
    ) -> None:
        self.cursor = BackfillPosition(**{**vars(cursor), "status": "done" if done else "running"})
        self.advances.append(self.cursor)


def _backfill(
    api: FakeApi,
    pub: FakePublisher,
    cursors: FakeCursors,
    *,
    siblings: tuple[str, ...] = (),
    locations: FakeLocations | None = None,
) -> Backfill:
    """The backfill of location loc_1 of company co_1 (`siblings`: its other locations that
    are tenants here too)."""
    tenant, *others = (
        IngestTenant(id=uuid.uuid4(), name=loc, active=True, company_id="co_1", location_id=loc)
        for loc in ("loc_1", *siblings)
    )
    company = IngestCompany(
        id="co_1",
        name="c",
        webhook_keys=WebhookKeys("standard", ()),
        shopmonkey_api_key="k",
        tenants=(tenant, *others),
    )
    return Backfill(
        company=company,
        tenant=tenant,
        since=NOW - timedelta(days=90),
        reader=RecordReader(api),  # type: ignore[arg-type]
        customers=FakeCustomers(),
        publisher=pub,
        cursors=cursors,  # type: ignore[arg-type]
        max_age=timedelta(days=30),
        lead_ids=LEAD_IDS,
        locations=locations,
        clock=lambda: NOW,
    )


async def test_ties_across_pages_and_age_flag() -> None:
    # 250 orders, 130 of them at the very same instant (ties spanning two pages)
    same = NOW - timedelta(days=40)
    orders = [_order(i, same) for i in range(130)]
    orders += [_order(i, NOW - timedelta(days=20, minutes=i)) for i in range(130, 250)]
    api, pub, cursors = FakeApi(orders), FakePublisher(), FakeCursors()
    final = await _backfill(api, pub, cursors).run()
    assert final.status == "done"
    assert sorted(e.event_id for e in pub.events) == sorted(
        f"shopmonkey:order:{o['id']}:1" for o in orders
    )
    assert api.calls[1] == (iso_z(same), 100)  # second page: same instant, skip the 100 seen
    flags = {e.order.order_id: e.plan_touchpoints for e in pub.events if e.order}
    assert not any(flags[f"order-{i}"] for i in range(130))  # 40 days old: no touch points
    assert all(flags[f"order-{i}"] for i in range(130, 250))
    assert all(e.source.value == "backfill" for e in pub.events)


async def test_cursor_moves_only_after_a_fully_acknowledged_page_and_resumes() -> None:
    orders = [_order(i, NOW - timedelta(days=10, minutes=i)) for i in range(250)]
    api, cursors = FakeApi(orders), FakeCursors()
    with pytest.raises(RuntimeError):
        await _backfill(api, FakePublisher(fail_after=150), cursors).run()
    assert cursors.cursor is not None and cursors.cursor.produced == 100  # page 2 not acked
    pub = FakePublisher()
    await _backfill(api, pub, cursors).run()
    assert len(pub.events) == 150  # resumed at page 2: nothing missing, nothing before it
    ascending = sorted(orders, key=lambda o: o["createdDate"])
    assert {e.event_id for e in pub.events} == {
        f"shopmonkey:order:{o['id']}:1" for o in ascending[100:]
    }


async def test_only_the_locations_own_orders_are_backfilled_whatever_the_api_answers() -> None:
    """The API ignores the location filter (reference §3): the company's other locations'
    orders come back too. Only loc_1's become events; loc_2's are left to its own backfill,
    loc_9's (no tenant) are counted; paging still covers every page."""
    orders = []
    for i in range(240):
        order = _order(i, NOW - timedelta(days=5, minutes=i))
        order["locationId"] = ("loc_1", "loc_2", "loc_9")[i % 3]
        orders.append(order)
    before = REGISTRY.get_sample_value(
        "ingest_unrouted_records_total", {"source": "backfill", "reason": "unknown_location"}
    )
    pub, cursors = FakePublisher(), FakeCursors()
    api = FakeApi(orders)
    backfill = _backfill(api, pub, cursors, siblings=("loc_2",))
    final = await backfill.run()
    assert final.status == "done" and final.produced == 80
    assert {e.order.order_id for e in pub.events if e.order} == {
        o["id"] for o in orders if o["locationId"] == "loc_1"
    }
    assert {e.tenant_id for e in pub.events} == {backfill.tenant.id}
    assert backfill.elsewhere == 160
    after = REGISTRY.get_sample_value(
        "ingest_unrouted_records_total", {"source": "backfill", "reason": "unknown_location"}
    )
    assert (after or 0) - (before or 0) == 80
    assert api.locations and set(api.locations) == {"loc_1"}  # asked for, not trusted


async def test_a_backfill_records_where_each_customer_has_been_and_tells_nobody() -> None:
    """History is its location's own: a backfilled order tells no other location, but it is
    recorded, so a later new order of the customer elsewhere reaches this location's leads."""
    orders = [_order(i, NOW - timedelta(days=5, minutes=i)) for i in range(6)]
    for order in orders[3:]:  # returning customers: orders of c0, c1, c2 again
        order["customerId"] = order["customer"]["id"] = f"c{int(order['id'][6:]) - 3}"
    pub, locations = FakePublisher(), FakeLocations()
    backfill = _backfill(
        FakeApi(orders), pub, FakeCursors(), siblings=("loc_2",), locations=locations
    )
    assert (await backfill.run()).status == "done"
    assert len(pub.events) == 6 and all(ELSEWHERE_EVENT not in e.event_id for e in pub.events)
    assert locations.rows == {("co_1", f"c{i}"): {backfill.tenant.id} for i in range(3)}
    assert {tenant for _, _, tenant in locations.calls} == {backfill.tenant.id}


async def test_ignored_filter_is_refused() -> None:
    orders = [_order(0, NOW - timedelta(days=200)), _order(1, NOW - timedelta(days=1))]
    with pytest.raises(BackfillError, match="ignored the createdDate filter"):
        await _backfill(FakeApi(orders, ignore_filter=True), FakePublisher(), FakeCursors()).run()


async def test_rate_limiter_spaces_requests() -> None:
    clock = [0.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    limiter = RateLimiter.per_minute(600.0, clock=lambda: clock[0], sleep=sleep)  # one per 0.1 s
    await limiter.acquire()
    assert waits == []  # the first goes at once; the next is due 0.1 s later
    await limiter.acquire()  # waits 0.1 s
    assert waits == [pytest.approx(0.1)]
