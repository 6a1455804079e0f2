"""A Shopmonkey company with several locations, through aiohttp with fake ports: its
company-global webhook URL routes every order to its own location's tenant; an order of a
location without tenant is answered 202 "ignored" (counted) and attributed to nobody; a
location URL never takes another location's order as its own; a customer change reaches every
location. And the attacker's side of the new edge: forged or another company's signature,
another company's records, unknown or huge company ids, odd location ids, replays."""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from fakes.shopmonkey.data import Company, Location, World
from fakes.shopmonkey.webhooks import envelope
from schemas.base import Channel, lead_id_for_order
from services.common.domain.consent import ConsentRecord
from services.ingest.domain.model import IngestCompany
from services.ingest.entrypoints.http import create_app
from services.ingest.errors import Unavailable
from services.ingest.service_layer.order_events import told_elsewhere
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import (
    FakeConsents,
    FakeLocations,
    FakeTenants,
    company_of,
    delivery,
)
from tests.unit.ingest.support_http import Harness, metrics_text


class Companies(Harness):
    """`chain`: a company with four locations, three of them tenants here (the fourth is
    `unmapped`); `solo`: another company with one location."""

    def __init__(
        self, locations: FakeLocations | None = None, consents: FakeConsents | None = None
    ) -> None:
        world = World(seed=11, layout=(4, 1))
        chain, solo = world.companies
        self.lookups: list[str] = []
        super().__init__(
            world=world,
            tenants=CountingTenants(
                self.lookups, company_of(chain, locations=chain.locations[:3]), company_of(solo)
            ),
            locations=locations,
            consents=consents,
        )
        self.chain, self.solo = chain, solo
        self.mapped = chain.locations[:3]
        self.unmapped = chain.locations[3]

    def order(self, location: Location, **changes: Any) -> dict[str, Any]:
        order = self.world.create_order(location.company, location=location)
        return envelope("order", "INSERT", copy.deepcopy(order) | changes)


class CountingTenants(FakeTenants):
    """Remembers every company id looked up."""

    def __init__(self, lookups: list[str], *companies: IngestCompany) -> None:
        super().__init__(*companies)
        self.lookups = lookups

    async def company(self, company_id: str) -> IngestCompany | None:
        self.lookups.append(company_id)
        return await super().company(company_id)


@pytest.fixture
async def h() -> Companies:
    return Companies()


@pytest.fixture
async def client(h: Companies) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(h.settings, ingest=h.ingest))) as c:
        yield c


def company_url(company: Company | str) -> str:
    cid = company if isinstance(company, str) else company.company_id
    return f"/webhooks/shopmonkey/companies/{cid}/order"


def location_url(location: Location) -> str:
    return f"/webhooks/shopmonkey/{location.tenant_id}/order"


async def post(client: TestClient, path: str, signer: Company, doc: dict[str, Any], **kw: Any):  # type: ignore[no-untyped-def]
    headers, body = delivery(signer, doc, **kw)
    resp = await client.post(path, data=body, headers=headers)
    return resp.status, await resp.json()


async def metric(client: TestClient, reason: str) -> float:
    text = metrics_text()
    line = f'ingest_unrouted_records_total{{reason="{reason}",source="webhook"}}'
    found = [x for x in text.splitlines() if x.startswith(line)]
    return float(found[0].split()[-1]) if found else 0.0


async def test_the_company_url_routes_each_order_to_its_own_location(
    client: TestClient, h: Companies
) -> None:
    sent = {}
    for location in h.mapped:
        for _ in range(2):
            doc = h.order(location)
            status, answer = await post(client, company_url(h.chain), h.chain, doc)
            assert status == 200, answer
            lead = lead_id_for_order(LEAD_IDS, location.tenant_id, doc["data"]["id"])
            assert answer["leadId"] == str(lead)
            sent[doc["data"]["id"]] = location.tenant_id
    got = {e.order.order_id: e.tenant_id for e in h.publisher.own if e.order}
    assert got == sent and len(h.publisher.own) == 6
    # each new order is told to the company's other locations, as a customer event (no lead)
    told = sorted((e.order.order_id, e.tenant_id) for e in h.publisher.elsewhere if e.order)
    assert told == sorted(
        (order_id, other.tenant_id)
        for order_id, tenant in sent.items()
        for other in h.mapped
        if other.tenant_id != tenant
    )
    assert {(e.entity, e.lead_id) for e in h.publisher.elsewhere} == {("customer", None)}


async def test_an_order_is_told_elsewhere_only_when_new_or_reviving_work(
    client: TestClient, h: Companies
) -> None:
    """A change of an order concerns its own location; only a new order of a known customer,
    or one reviving a declined service, is told to the company's other locations."""
    here = h.mapped[0]
    doc = h.order(here)
    doc["operation"] = "UPDATE"
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    assert h.publisher.elsewhere == []
    revived = copy.deepcopy(doc)
    revived["data"]["meta"] = {"version": 7}
    revived["data"]["services"] = [
        {"id": "svc-2", "name": "Brakes", "revivedFromId": "svc-1", "totalCents": 100}
    ]
    assert (await post(client, company_url(h.chain), h.chain, revived))[0] == 200
    told = h.publisher.elsewhere
    assert sorted(e.tenant_id for e in told) == sorted(t.tenant_id for t in h.mapped[1:])
    assert all(e.order and e.order.service_lines[0].revived_from == "svc-1" for e in told)
    # a later version reviving nothing more is the same news: the same ids, dropped there
    revived["data"]["meta"] = {"version": 8}
    assert (await post(client, company_url(h.chain), h.chain, revived))[0] == 200
    again = h.publisher.elsewhere[len(told) :]
    assert sorted(e.event_id for e in again) == sorted(e.event_id for e in told)
    told = h.publisher.elsewhere
    anonymous = h.order(here, customerId=None, customer=None)
    published = len(h.publisher.events)
    assert (await post(client, company_url(h.chain), h.chain, anonymous))[0] == 200
    assert len(h.publisher.events) == published + 1  # its own event, nobody to tell about
    lone = h.order(h.solo.locations[0])
    assert (await post(client, company_url(h.solo), h.solo, lone))[0] == 200
    assert len(h.publisher.elsewhere) == len(told)  # a company of one location


@pytest.fixture
async def visits() -> FakeLocations:
    return FakeLocations()


@pytest.fixture
async def recorded(visits: FakeLocations) -> AsyncIterator[tuple[TestClient, Companies]]:
    """The company app with a store of where each customer has had orders."""
    h = Companies(visits)
    async with TestClient(TestServer(create_app(h.settings, ingest=h.ingest))) as c:
        yield c, h


def told(h: Companies) -> list[tuple[str, uuid.UUID]]:
    return [(e.order.order_id, e.tenant_id) for e in h.publisher.elsewhere if e.order]


async def test_a_new_order_is_told_only_where_its_customer_has_had_orders(
    recorded: tuple[TestClient, Companies], visits: FakeLocations
) -> None:
    """With the store, a new order goes to the locations where its customer has been (each
    has leads of theirs to tell), not to every location of the company: one record a location
    was four more records a webhook at a company of five, 199 at a chain of 200."""
    client, h = recorded
    first, second, third = h.mapped
    doc = h.order(first)
    customer = doc["data"]["customerId"]
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    assert told(h) == []  # a customer new to the company: nobody to tell
    back = h.order(second, customerId=customer)
    assert (await post(client, company_url(h.chain), h.chain, back))[0] == 200
    assert told(h) == [(back["data"]["id"], first.tenant_id)]  # not the third location
    # a change of an order at the third location records the customer there, tells nobody
    changed = h.order(third, customerId=customer)
    changed["operation"] = "UPDATE"
    assert (await post(client, company_url(h.chain), h.chain, changed))[0] == 200
    assert len(told(h)) == 1
    again = h.order(first, customerId=customer)
    assert (await post(client, company_url(h.chain), h.chain, again))[0] == 200
    assert sorted(told(h)[1:]) == sorted(
        (again["data"]["id"], t.tenant_id) for t in (second, third)
    )
    key = (h.chain.company_id, customer)
    assert visits.rows[key] == {first.tenant_id, second.tenant_id, third.tenant_id}


async def test_a_recorded_location_is_not_written_again_but_news_always_asks(
    recorded: tuple[TestClient, Companies], visits: FakeLocations
) -> None:
    """The store is asked once a location for an order's later changes (remembered), and on
    every new order (whose answer must be the current one, another process may have written)."""
    client, h = recorded
    here = h.mapped[0]
    doc = h.order(here)
    doc["operation"] = "UPDATE"
    for version in (1, 2, 3):
        doc["data"]["meta"] = {"version": version}
        assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    assert len(visits.calls) == 1
    customer = doc["data"]["customerId"]
    for _ in range(2):
        assert (
            await post(client, company_url(h.chain), h.chain, h.order(here, customerId=customer))
        )[0] == 200
    assert len(visits.calls) == 3
    # an order without a customer asks nothing
    anonymous = h.order(here, customerId=None, customer=None)
    assert (await post(client, company_url(h.chain), h.chain, anonymous))[0] == 200
    assert len(visits.calls) == 3
    # a company of one location has nobody to tell, but records its customers (for when it
    # opens a second location)
    lone = h.order(h.solo.locations[0])
    assert (await post(client, company_url(h.solo), h.solo, lone))[0] == 200
    assert visits.calls[3:] == [
        (h.solo.company_id, lone["data"]["customerId"], h.solo.locations[0].tenant_id)
    ]


async def test_a_delivery_twice_records_one_visit_and_tells_once(
    recorded: tuple[TestClient, Companies], visits: FakeLocations
) -> None:
    """Shopmonkey (or a replay of a captured request) delivers the same order twice: the
    second is a duplicate before any store is asked, and nobody is told again."""
    client, h = recorded
    first, second, _ = h.mapped
    doc = h.order(first)
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    back = h.order(second, customerId=doc["data"]["customerId"])
    for _ in range(2):
        assert (await post(client, company_url(h.chain), h.chain, back))[0] == 200
    assert len(visits.calls) == 2
    assert told(h) == [(back["data"]["id"], first.tenant_id)]


async def test_an_order_is_answered_503_while_the_store_is_down_and_taken_on_the_retry(
    recorded: tuple[TestClient, Companies], visits: FakeLocations
) -> None:
    """Where the customer has been is recorded before the order is answered (its record goes
    on meanwhile): without it a later order elsewhere would not reach this location's leads.
    Down: 503, nobody told, and Shopmonkey's retry of the same delivery records it and tells
    (the order's own event again, by the same id: dropped downstream as a duplicate)."""
    client, h = recorded
    first, second, _ = h.mapped
    doc = h.order(first)
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    back = h.order(second, customerId=doc["data"]["customerId"])
    visits.fail = Unavailable("customer locations: OperationalError")
    status, answer = await post(client, company_url(h.chain), h.chain, back)
    assert status == 503, answer
    assert told(h) == []
    visits.fail = None
    assert (await post(client, company_url(h.chain), h.chain, back))[0] == 200
    assert told(h) == [(back["data"]["id"], first.tenant_id)]
    own = [
        e.event_id for e in h.publisher.own if e.order and e.order.order_id == back["data"]["id"]
    ]
    assert len(own) == 2 and len(set(own)) == 1


async def test_the_orders_record_goes_on_while_its_visit_is_recorded(
    recorded: tuple[TestClient, Companies], visits: FakeLocations
) -> None:
    """The order's way to the sequencer does not wait for PostgreSQL: its record is published
    while the visit is asked; the answer (and the other locations' records) after it."""
    client, h = recorded
    first, second, _ = h.mapped
    doc = h.order(first)
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    back = h.order(second, customerId=doc["data"]["customerId"])
    visits.hold = asyncio.Event()
    answer = asyncio.create_task(post(client, company_url(h.chain), h.chain, back))
    for _ in range(200):
        if any(e.order and e.order.order_id == back["data"]["id"] for e in h.publisher.own):
            break
        await asyncio.sleep(0.005)
    else:
        raise AssertionError("the order's record waited for the visit")
    assert not answer.done() and told(h) == []
    visits.hold.set()
    assert (await answer)[0] == 200
    assert told(h) == [(back["data"]["id"], first.tenant_id)]


def with_customer(doc: dict[str, Any], n: int = 1) -> dict[str, Any]:
    """`doc` with its customer embedded, as Shopmonkey's order webhooks carry it: an email
    and a mobile, both opted in."""
    doc["data"]["customer"] = {
        "id": doc["data"]["customerId"],
        "firstName": "Pat",
        "lastName": "Lee",
        "emails": [{"email": f"pat{n}@example.com", "primary": True, "subscribed": True}],
        "phoneNumbers": [
            {"number": f"+1202555{n:04d}", "primary": True, "optIn": True, "type": "Mobile"}
        ],
    }
    return doc


@pytest.fixture
async def consents() -> FakeConsents:
    return FakeConsents()


@pytest.fixture
async def kept(
    visits: FakeLocations, consents: FakeConsents
) -> AsyncIterator[tuple[TestClient, Companies]]:
    """The company app with both stores: where customers have had orders, and consent."""
    h = Companies(visits, consents)
    async with TestClient(TestServer(create_app(h.settings, ingest=h.ingest))) as c:
        yield c, h


def published(h: Companies, doc: dict[str, Any]) -> bool:
    return any(e.order and e.order.order_id == doc["data"]["id"] for e in h.publisher.events)


async def test_an_orders_consent_is_committed_with_its_visit_before_anything_is_published(
    kept: tuple[TestClient, Companies], visits: FakeLocations, consents: FakeConsents
) -> None:
    """An order whose visit is recorded carries its customer's consent into the visit's
    commit: one round trip where the consent and then the visit were two in turn. Nothing of
    the order is published before that commit (the gate reads the consent on the next touch):
    the order's record waits for it, as it waited for the consent's own commit before."""
    client, h = kept
    first, second, _ = h.mapped
    doc = with_customer(h.order(first))
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    assert consents.calls == []  # no commit of its own
    assert [sorted(r.contact for r in records) for records in visits.consent] == [
        ["+12025550001", "pat1@example.com"]
    ]
    back = with_customer(h.order(second, customerId=doc["data"]["customerId"]), 2)
    visits.hold = asyncio.Event()
    answer = asyncio.create_task(post(client, company_url(h.chain), h.chain, back))
    for _ in range(200):
        if len(visits.calls) == 2:
            break
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.05)
    assert not published(h, back) and not answer.done()
    visits.hold.set()
    assert (await answer)[0] == 200
    assert published(h, back) and told(h) == [(back["data"]["id"], first.tenant_id)]
    assert consents.calls == [] and len(visits.consent) == 2


async def test_an_order_whose_visit_and_consent_fail_is_503_and_nothing_is_published(
    kept: tuple[TestClient, Companies], visits: FakeLocations, consents: FakeConsents
) -> None:
    """The one commit fails: 503, nothing of the order published, nothing committed; the
    retry commits both and publishes."""
    client, h = kept
    doc = with_customer(h.order(h.mapped[0]))
    visits.fail = Unavailable("consent store and customer locations: OperationalError")
    status, answer = await post(client, company_url(h.chain), h.chain, doc)
    assert status == 503, answer
    assert not published(h, doc) and visits.consent == [] and consents.calls == []
    visits.fail = None
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    assert published(h, doc) and len(visits.consent) == 1 and visits.consent[0]


async def test_consent_of_an_order_that_records_no_visit_is_committed_alone_first(
    kept: tuple[TestClient, Companies], visits: FakeLocations, consents: FakeConsents
) -> None:
    """A later change of an order at a location already recorded asks no visit: its consent
    is committed on its own, and the record waits for that commit."""
    client, h = kept
    doc = with_customer(h.order(h.mapped[0]))
    assert (await post(client, company_url(h.chain), h.chain, doc))[0] == 200
    doc["operation"] = "UPDATE"
    doc["data"]["meta"] = {"version": 2}
    doc["data"]["customer"]["phoneNumbers"][0]["optIn"] = False  # a STOP recorded at the shop
    consents.hold = asyncio.Event()
    before = len(h.publisher.events)
    answer = asyncio.create_task(post(client, company_url(h.chain), h.chain, doc))
    await asyncio.sleep(0.05)
    assert len(h.publisher.events) == before and not answer.done()
    consents.hold.set()
    assert (await answer)[0] == 200
    assert len(h.publisher.events) == before + 1 and len(visits.calls) == 1
    [(company, records)] = consents.calls
    assert company == h.chain.company_id
    assert {r.contact: r.opted_in for r in records}["+12025550001"] is False


async def test_a_refused_orders_consent_is_still_committed(
    kept: tuple[TestClient, Companies], visits: FakeLocations, consents: FakeConsents
) -> None:
    """An order refused once its consent was read (400: its customer's id holds a NUL) still
    keeps that consent, as it did when the consent went first: a STOP the shop recorded counts
    whatever becomes of the order."""
    client, h = kept
    doc = with_customer(h.order(h.mapped[0]))
    doc["data"]["customer"]["id"] = "cus\x00tomer"
    doc["data"]["customer"]["phoneNumbers"][0]["optIn"] = False
    status, answer = await post(client, company_url(h.chain), h.chain, doc)
    assert status == 400, answer
    assert not published(h, doc) and visits.calls == []
    [(company, records)] = consents.calls
    assert company == h.chain.company_id
    assert {r.contact: r.opted_in for r in records} == {
        "pat1@example.com": True,
        "+12025550001": False,
    }


async def test_consent_is_never_given_to_a_call_that_records_no_visit(h: Companies) -> None:
    """`told_elsewhere` commits consent only with a visit: asked to carry it where it records
    none (the caller's mistake), it raises before committing anything, instead of dropping it
    silently."""
    visits = FakeLocations()
    company = await h.tenants.company(h.chain.company_id)
    assert company is not None
    record = ConsentRecord(Channel.SMS, "+12025550001", "shopmonkey", datetime.now(UTC), "k")
    with pytest.raises(RuntimeError, match="no visit is asked"):
        await told_elsewhere(company, [], visits, consent=[record])
    assert visits.calls == [] and visits.consent == []


async def test_an_order_of_a_location_without_tenant_is_ignored_and_counted(
    client: TestClient, h: Companies
) -> None:
    before = await metric(client, "unknown_location")
    doc = h.order(h.unmapped)
    status, answer = await post(client, company_url(h.chain), h.chain, doc)
    assert status == 202 and answer["success"] is True
    assert answer["ignored"].startswith("unknown_location")
    assert h.unmapped.location_id in answer["ignored"]
    assert h.publisher.events == []
    assert await metric(client, "unknown_location") == before + 1
    text = metrics_text()
    assert 'ingest_webhook_requests_total{outcome="unrouted"}' in text
    # the location URLs never take it either
    for location in h.mapped:
        status, answer = await post(client, location_url(location), h.chain, doc)
        assert status == 202 and answer["ignored"].startswith("unknown_location")
    assert h.publisher.events == []
    # each delivery made sure the location is not one added a moment ago
    assert h.tenants.anew_calls == 1 + len(h.mapped)


async def test_a_location_added_a_moment_ago_gets_its_first_order(
    client: TestClient, h: Companies
) -> None:
    """The directory served still lacks the location (its change not read yet); the company
    read anew has it: the order is routed, not ignored (Shopmonkey would not send it again)."""
    stale = h.tenants.companies[h.chain.company_id]
    h.tenants.add(company_of(h.chain, locations=h.chain.locations))  # read anew: all four
    served = h.tenants.company

    async def stale_company(company_id: str) -> IngestCompany | None:
        return stale if company_id == h.chain.company_id else await served(company_id)

    h.tenants.company = stale_company  # type: ignore[method-assign]
    doc = h.order(h.unmapped)
    status, answer = await post(client, company_url(h.chain), h.chain, doc)
    assert status == 200, answer
    lead = lead_id_for_order(LEAD_IDS, h.unmapped.tenant_id, doc["data"]["id"])
    assert answer["leadId"] == str(lead)
    assert [e.tenant_id for e in h.publisher.own] == [h.unmapped.tenant_id]
    # a known location's order never asks for a read
    calls = h.tenants.anew_calls
    assert (await post(client, company_url(h.chain), h.chain, h.order(h.mapped[0])))[0] == 200
    assert h.tenants.anew_calls == calls == 1


async def test_a_location_url_routes_a_sibling_locations_order_to_that_location(
    client: TestClient, h: Companies
) -> None:
    here, there = h.mapped[0], h.mapped[1]
    doc = h.order(there)
    status, answer = await post(client, location_url(here), h.chain, doc)
    assert status == 200
    assert answer["leadId"] == str(lead_id_for_order(LEAD_IDS, there.tenant_id, doc["data"]["id"]))
    [event] = h.publisher.own
    assert event.tenant_id == there.tenant_id != here.tenant_id


async def test_legacy_orders_without_location_belong_to_the_location_url_only(
    client: TestClient, h: Companies
) -> None:
    doc = h.order(h.mapped[1])
    del doc["data"]["locationId"]
    status, answer = await post(client, location_url(h.mapped[1]), h.chain, doc)
    assert status == 200
    assert [e.tenant_id for e in h.publisher.own] == [h.mapped[1].tenant_id]
    published = len(h.publisher.events)
    other = h.order(h.mapped[2])
    del other["data"]["locationId"]
    status, answer = await post(client, company_url(h.chain), h.chain, other)
    assert status == 202 and answer["ignored"].startswith("no_location")
    assert len(h.publisher.events) == published


async def test_a_customer_change_reaches_every_location_of_the_company(
    client: TestClient, h: Companies
) -> None:
    order = h.world.create_order(h.chain, location=h.mapped[0])
    record, diff = h.world.update_customer(h.chain, order["customerId"], {"email": "n@x.org"})
    doc = envelope("customer", "UPDATE", copy.deepcopy(record), diff)
    for path in (company_url(h.chain), location_url(h.mapped[2])):
        status, answer = await post(client, path, h.chain, doc)
        assert status == 200 and answer["leadId"] is None
    events = h.publisher.events
    assert sorted(e.tenant_id for e in events) == sorted(loc.tenant_id for loc in h.mapped)
    assert {e.event_id for e in events} == {answer["eventId"]}  # one event id, one per tenant
    assert {e.customer.email for e in events} == {"n@x.org"}  # the second delivery: a duplicate


# the attacker's side ----------------------------------------------------------------------------
async def test_the_signature_is_checked_before_any_routing(
    client: TestClient, h: Companies
) -> None:
    before = await metric(client, "unknown_location")
    for doc in (h.order(h.unmapped), h.order(h.mapped[0], companyId="co_else")):
        headers, body = delivery(h.chain, doc)
        headers["webhook-signature"] = "v1,AAAA"
        resp = await client.post(company_url(h.chain), data=body, headers=headers)
        assert resp.status == 401
    assert await metric(client, "unknown_location") == before  # never routed, never counted
    assert h.publisher.events == [] and h.customers.calls == []
    assert h.tenants.anew_calls == 0  # nor can a forged delivery make the directory read


async def test_another_companys_signature_opens_neither_url(
    client: TestClient, h: Companies
) -> None:
    doc = h.order(h.mapped[0])  # a genuine order of chain, signed by solo's secret
    for path in (company_url(h.chain), location_url(h.mapped[0])):
        status, answer = await post(client, path, h.solo, doc)
        assert status == 401 and answer["reason"] == "missing or invalid credentials"
    # and solo's genuine delivery posted to chain's URL is refused the same way
    mine = h.order(h.solo.locations[0])
    status, _ = await post(client, company_url(h.chain), h.solo, mine)
    assert status == 401
    assert h.publisher.events == []


async def test_a_record_of_another_company_is_ignored_never_stored(
    client: TestClient, h: Companies
) -> None:
    """Signed by chain's secret but naming solo (a leaked or shared secret, a misconfigured
    webhook): nothing of it reaches either company's tenants."""
    before = await metric(client, "other_company")
    foreign = h.order(h.solo.locations[0])  # companyId/locationId of solo
    customer = h.world.add_customer(h.solo)
    paths = [company_url(h.chain), location_url(h.mapped[0])]
    for path in paths:
        status, answer = await post(client, path, h.chain, foreign)
        assert status == 202 and answer["ignored"].startswith("other_company")
        status, answer = await post(client, path, h.chain, envelope("customer", "UPDATE", customer))
        assert status == 202 and answer["ignored"].startswith("other_company")
    assert h.publisher.events == []
    assert await metric(client, "other_company") == before + 4


@pytest.mark.parametrize(
    "company_id",
    ["co_unknown", "x" * 5000, "%00", "..%2F..%2Fetc", "co_%E2%80%AE", "%20"],
)
async def test_unknown_huge_or_odd_company_ids_are_404_and_nothing_is_produced(
    client: TestClient, h: Companies, company_id: str
) -> None:
    doc = h.order(h.mapped[0])
    status, answer = await post(client, company_url(company_id), h.chain, doc)
    assert status == 404 and answer == {"success": False, "reason": "unknown company"}
    assert h.publisher.events == []
    assert all(len(c) <= 100 for c in h.lookups)  # a huge id is never even looked up


@pytest.mark.parametrize(
    ("location", "code"),
    [
        ("L" * 10_000, "invalid_location"),
        (12345, "invalid_location"),
        (["loc"], "invalid_location"),
        ({"in": ["x"]}, "invalid_location"),
        (True, "invalid_location"),
        ("loc_\u202eevil", "unknown_location"),
        ("'; DROP TABLE tenants; --", "unknown_location"),
        (None, "no_location"),
        ("", "no_location"),
    ],
)
async def test_odd_location_ids_are_attributed_to_nobody(
    client: TestClient, h: Companies, location: object, code: str
) -> None:
    doc = h.order(h.mapped[0], locationId=location)
    status, answer = await post(client, company_url(h.chain), h.chain, doc)
    assert status == 202 and answer["ignored"].startswith(code), answer
    assert len(answer["ignored"]) < 300  # a huge value is not echoed back
    assert h.publisher.events == []


async def test_replays_are_answered_once_or_refused(client: TestClient, h: Companies) -> None:
    doc = h.order(h.mapped[1])
    answers = [
        await post(client, company_url(h.chain), h.chain, doc, msg_id="msg_same", attempt=n)
        for n in range(1, 4)
    ]
    assert {a[0] for a in answers} == {200} and len({a[1]["leadId"] for a in answers}) == 1
    assert len(h.publisher.own) == 1
    published = len(h.publisher.events)
    # the same delivery through a location URL too: still the one record
    status, _ = await post(client, location_url(h.mapped[0]), h.chain, doc)
    assert status == 200 and len(h.publisher.events) == published
    # a captured delivery replayed later (stale timestamp) or at another company's URL
    stale = int(time.time()) - 3600
    status, answer = await post(client, company_url(h.chain), h.chain, doc, timestamp=stale)
    assert status == 401 and answer["reason"] == "missing or invalid credentials"
    headers, body = delivery(h.chain, doc)
    resp = await client.post(company_url(h.solo), data=body, headers=headers)
    assert resp.status == 401
    assert len(h.publisher.events) == published


async def test_an_inactive_or_unknown_location_url_is_404(client: TestClient, h: Companies) -> None:
    doc = h.order(h.mapped[0])
    for path in (location_url(h.unmapped), f"/webhooks/shopmonkey/{uuid.uuid4()}/order"):
        status, answer = await post(client, path, h.chain, doc)
        assert status == 404 and answer["reason"] == "unknown tenant"
    assert h.publisher.events == []
