"""Property: for any set of Shopmonkey companies, their locations and our tenants (some
locations unmapped, some tenants inactive, location ids shared between companies), every order
delivered anywhere (each company's URL, each tenant's URL, the poller's read of a company) is
attributed to at most one tenant, and only to the active tenant mapped to the order's own
(`companyId`, `locationId`); the one exception being the legacy location URL, which takes an
order that names no location.

The real path: tenants built by the directory's builder (`tenants_pg.ingest_company`) from
database records, deliveries signed with each company's secret and handled by `WebhookIngest`
(signature, envelope, routing, publish). The oracle decides from the generated mapping alone.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakes.shopmonkey.webhooks import standard_signature
from services.common.db.companies import CompanyRecord
from services.common.db.tenants import TenantRecord
from services.ingest.adapters.tenants_pg import ingest_company
from services.ingest.domain.model import IngestCompany
from services.ingest.domain.routing import Unrouted, route_order
from services.ingest.errors import Unauthorized
from services.ingest.service_layer.seen_events import SeenEvents
from services.ingest.service_layer.webhooks import Accepted, Ignored, WebhookConfig, WebhookIngest
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.ingest.support import FakePublisher

COMPANY_IDS = ["co_a", "co_b", "co_c", "7"]
LOCATION_IDS = ["L1", "L2", "L3", "L4"]
#: What an order may carry as its companyId / locationId: real ids, strangers, odd values.
ODD = [None, "", "x" * 101, 7, ["L1"], {"id": "L1"}, True, "L1 ", "l1", "ＬＬ"]


@dataclass(frozen=True)
class Universe:
    companies: dict[str, IngestCompany]
    secrets: dict[str, str]
    #: (company id, location id) → tenant id, active tenants only (the oracle's truth)
    mapping: dict[tuple[str, str], uuid.UUID]
    tenants: dict[uuid.UUID, str]  # active tenant → its company


def _tenant(company_id: str, location_id: str, active: bool) -> TenantRecord:
    return TenantRecord(
        id=uuid.uuid4(),
        name=f"{company_id}/{location_id}",
        shopmonkey_company_id=company_id,
        shopmonkey_location_id=location_id,
        timezone="America/New_York",
        active=active,
        us_state=None,
        postal_address=None,
        phone=None,
        nurture_plan=None,
    )


@st.composite
def universes(draw: st.DrawFn) -> Universe:
    ids = draw(st.lists(st.sampled_from(COMPANY_IDS), min_size=1, max_size=4, unique=True))
    companies, secrets, mapping, tenants = {}, {}, {}, {}
    for cid in ids:
        # (location, active) per tenant; locations not drawn are the company's unmapped ones
        rows = draw(
            st.lists(
                st.tuples(st.sampled_from(LOCATION_IDS), st.booleans()),
                max_size=4,
                unique_by=lambda r: r[0],
            )
        )
        records = [_tenant(cid, loc, active) for loc, active in rows]
        key = hashlib.sha256(cid.encode() + draw(st.binary(max_size=8))).digest()  # one each
        secret = "whsec_" + base64.b64encode(key).decode()
        record = CompanyRecord(
            id=cid,
            name=cid,
            signature_scheme="standard",
            active=True,
            shopmonkey_api_key="k",
            webhook_secret=secret,
        )
        companies[cid] = ingest_company(record, records)
        secrets[cid] = secret
        for t in records:
            if t.active:
                mapping[(cid, t.shopmonkey_location_id)] = t.id
                tenants[t.id] = cid
    return Universe(companies, secrets, mapping, tenants)


class NoCustomers:
    """The orders carry their customer's email and phone: nothing is looked up."""

    async def customer(self, company: object, customer_id: str, *, fresh: bool = False) -> None:
        raise AssertionError("no look-up expected")


def orders() -> st.SearchStrategy[dict[str, Any]]:
    company = st.sampled_from([*COMPANY_IDS, "co_unknown", *ODD])
    location = st.sampled_from([*LOCATION_IDS, "L9", *ODD])
    return st.builds(
        lambda c, loc, with_c, with_loc, n: {
            "id": f"order-{n}",
            **({"companyId": c} if with_c else {}),
            **({"locationId": loc} if with_loc else {}),
            "status": "Estimate",
            "createdDate": "2026-05-01T15:04:05.000Z",
            "customer": {
                "id": "c1",
                "emails": [{"email": "a@b.io"}],
                "phoneNumbers": [{"number": "+12125550123"}],
            },
            "meta": {"version": 1},
        },
        company,
        location,
        st.booleans(),
        st.booleans(),
        st.integers(0, 10**6),
    )


def expected(
    u: Universe, entry_company: str, order: dict[str, Any], url_tenant: uuid.UUID | None
) -> uuid.UUID | None:
    """The oracle: the tenant the order must go to through this entry, or None."""
    named = order.get("companyId")
    if named is not None and named != entry_company:
        return None
    location = order.get("locationId")
    if location is None or location == "":
        return url_tenant
    if not isinstance(location, str):
        return None
    return u.mapping.get((entry_company, location))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_route_order_attributes_to_at_most_the_tenant_of_the_orders_own_location(
    data: st.DataObject,
) -> None:
    u = data.draw(universes())
    for order in data.draw(st.lists(orders(), min_size=1, max_size=8)):
        for cid, company in u.companies.items():
            # the poller and the company URL: no default
            routed = route_order(company, order)
            want = expected(u, cid, order, None)
            if want is None:
                assert isinstance(routed, Unrouted), (order, routed)
            else:
                assert not isinstance(routed, Unrouted) and routed.id == want
                assert (routed.company_id, routed.location_id) == (cid, order["locationId"])
            # each location URL of this company
            for tenant in company.tenants:
                routed = route_order(company, order, default=tenant)
                want = expected(u, cid, order, tenant.id)
                assert (None if isinstance(routed, Unrouted) else routed.id) == want


def _signed(secret: str, body: bytes) -> dict[str, str]:
    msg_id, stamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": standard_signature(secret, msg_id, stamp, body),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_delivery_lands_at_its_own_location_exactly_once_or_nowhere(
    data: st.DataObject,
) -> None:
    u = data.draw(universes())
    deliveries = data.draw(st.lists(orders(), min_size=1, max_size=6))
    # who signs: the entry's own company, or (an attacker's attempt) another company
    signer_is_other = data.draw(st.lists(st.booleans(), min_size=len(deliveries)))

    async def run() -> None:
        for n, order in enumerate(deliveries):
            doc = {"apiVersion": "3", "operation": "INSERT", "table": "order", "data": order}
            body = json.dumps(doc).encode()
            entries = [(cid, None) for cid in u.companies] + [
                (cid, t) for cid, c in u.companies.items() for t in c.tenants
            ]
            for cid, tenant in entries:
                others = [o for o in u.companies if o != cid]
                forged = bool(others) and n < len(signer_is_other) and signer_is_other[n]
                signer = others[0] if forged else cid
                publisher = FakePublisher()
                ingest = WebhookIngest(
                    customers=NoCustomers(),
                    publisher=publisher,
                    config=WebhookConfig(demo_mode=False, whitelist=frozenset(), lead_ids=LEAD_IDS),
                    seen_events=SeenEvents(),
                )
                headers = _signed(u.secrets[signer], body)
                handled = ingest.handle(
                    u.companies[cid], headers, body, "application/json", tenant=tenant
                )
                if forged:  # refused before anything else
                    with pytest.raises(Unauthorized):
                        await handled
                    assert publisher.events == []
                    continue
                result = await handled
                want = expected(u, cid, order, tenant.id if tenant else None)
                attributed = [e.tenant_id for e in publisher.own]
                assert len(attributed) <= 1
                assert attributed == ([want] if want is not None else [])
                # told to the company's other locations only, never with a lead, never twice
                told = [e.tenant_id for e in publisher.elsewhere]
                assert len(told) == len(set(told)) and want not in told
                assert all(u.tenants[t] == cid for t in told)
                assert all(e.lead_id is None for e in publisher.elsewhere)
                if want is None:
                    assert isinstance(result, Ignored) and result.outcome == "unrouted"
                else:
                    assert isinstance(result, Accepted)
                    assert u.tenants[want] == cid  # never another company's tenant

    asyncio.run(run())
