"""Hand-written fakes of ingest's ports (no Kafka, no PostgreSQL, no HTTP)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fakes.shopmonkey.data import Company, Location, World
from fakes.shopmonkey.query import matches, order_records
from fakes.shopmonkey.webhooks import signed_headers
from schemas.events import OrderEvent
from services.common.domain.consent import ConsentRecord
from services.ingest.domain.draft import ELSEWHERE_EVENT, OrderEventDraft
from services.ingest.domain.model import IngestCompany, IngestTenant, Page
from services.ingest.domain.shopmonkey_signatures import WebhookKeys
from services.ingest.errors import (
    OrderByRejected,
    PublishUnavailable,
    ShopmonkeyRejected,
    ShopmonkeyUnavailable,
)


def company_of(
    company: Company, *, api_key: bool = True, locations: list[Location] | None = None
) -> IngestCompany:
    """The simulated company as ingest knows it: its locations (`locations`: only those) as
    tenants."""
    return IngestCompany(
        id=company.company_id,
        name=company.company_name,
        webhook_keys=WebhookKeys.from_secret(company.signature_scheme, company.webhook_secret),
        shopmonkey_api_key=company.api_key if api_key else None,
        tenants=tuple(
            IngestTenant(
                id=location.tenant_id,
                name=location.name,
                active=True,
                company_id=company.company_id,
                location_id=location.location_id,
            )
            for location in (company.locations if locations is None else locations)
        ),
    )


def tenant_of(company: Company) -> IngestTenant:
    """The tenant of the company's first (a single-location company's only) location."""
    return company_of(company).tenants[0]


def delivery(company: Company, doc: dict[str, Any], **kw: Any) -> tuple[dict[str, str], bytes]:
    body = json.dumps(doc).encode()
    headers = {k.lower(): v for k, v in signed_headers(company, body, **kw).items()}
    return headers, body


class FakeTenants:
    """`TenantDirectory` over the companies given (each with its tenants)."""

    def __init__(
        self, *companies: IngestCompany, website_keys: dict[str, uuid.UUID] | None = None
    ) -> None:
        self.companies = {c.id: c for c in companies}
        self.website_keys = website_keys or {}
        self.fail: Exception | None = None
        self.anew_calls = 0  # reads asked for by a delivery to a location not known

    def add(self, company: IngestCompany) -> None:
        self.companies[company.id] = company

    async def company(self, company_id: str) -> IngestCompany | None:
        return self.companies.get(company_id)

    async def company_anew(self, company_id: str) -> IngestCompany | None:
        self.anew_calls += 1
        return self.companies.get(company_id)

    async def company_of(self, tenant_id: uuid.UUID) -> IngestCompany | None:
        return next((c for c in self.companies.values() if tenant_id in c.by_id), None)

    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        company = await self.company_of(tenant_id)
        return company.by_id[tenant_id] if company is not None else None

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        tid = self.website_keys.get(api_key)
        return await self.get(tid) if tid else None

    async def pollable(self) -> list[IngestCompany]:
        if self.fail is not None:
            raise self.fail
        return [c for c in self.companies.values() if c.shopmonkey_api_key and c.tenants]


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[OrderEvent] = []
        self.fail_next = 0
        self.fail_tenants: set[uuid.UUID] = set()
        self.delay = 0.0  # seconds until the "acknowledgement"

    async def publish(self, event: OrderEvent | OrderEventDraft) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next > 0 or event.tenant_id in self.fail_tenants:
            self.fail_next = max(0, self.fail_next - 1)
            raise PublishUnavailable("Kafka did not acknowledge within 3s", retry_after=5)
        self.events.append(OrderEvent.from_bytes(event.to_bytes()))  # what the topic would hold

    def ids(self) -> list[str]:
        return [e.event_id for e in self.events]

    @property
    def own(self) -> list[OrderEvent]:
        """The events of the records themselves, without a new order told to the other
        locations of its company (`told_elsewhere`)."""
        return [e for e in self.events if ELSEWHERE_EVENT not in e.event_id]

    @property
    def elsewhere(self) -> list[OrderEvent]:
        return [e for e in self.events if ELSEWHERE_EVENT in e.event_id]


class _StorePort:
    """A store's round trip in memory: one suspension, however short; `hold`: what calls wait
    for when set; `fail`: raised by the next calls."""

    def __init__(self) -> None:
        self.fail: Exception | None = None
        self.hold: asyncio.Event | None = None

    async def _round_trip(self) -> None:
        await asyncio.sleep(0)
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail


class FakeConsents(_StorePort):
    """`ConsentStore` in memory: the calls committed (company, records)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, list[ConsentRecord]]] = []

    async def record(self, company_id: str, records: Sequence[ConsentRecord]) -> None:
        await self._round_trip()
        self.calls.append((company_id, list(records)))


class FakeLocations(_StorePort):
    """`CustomerLocations` in memory: where each (company, customer) has had orders; records
    every visit asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], set[uuid.UUID]] = {}
        self.calls: list[tuple[str, str, uuid.UUID]] = []
        #: the consent records each committed visit carried
        self.consent: list[list[ConsentRecord]] = []
        self._known: set[tuple[str, str, uuid.UUID]] = set()

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        return (company_id, customer_id, tenant_id) in self._known

    async def visit(
        self,
        company_id: str,
        customer_id: str,
        tenant_id: uuid.UUID,
        *,
        consent: Sequence[ConsentRecord] = (),
    ) -> frozenset[uuid.UUID]:
        self.calls.append((company_id, customer_id, tenant_id))
        await self._round_trip()
        self.consent.append(list(consent))
        tenants = self.rows.setdefault((company_id, customer_id), set())
        tenants.add(tenant_id)
        self._known.add((company_id, customer_id, tenant_id))
        return frozenset(tenants)


class FakeCustomers:
    """Serves the simulator world's customers (by company); records calls; can be made to
    fail."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[tuple[str, str, bool]] = []
        self.fail: Exception | None = None

    async def customer(
        self, company: IngestCompany, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        self.calls.append((company.id, customer_id, fresh))
        if self.fail is not None:
            raise self.fail
        [owner] = [c for c in self.world.companies if c.company_id == company.id]
        return owner.customers.get(customer_id)


class FakeOrderSource:
    """`RecordSource` over the simulator's world and query grammar, with its quirks."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.calls: list[dict[str, Any]] = []
        self.ignore_filter = False
        self.ignore_orderby = False
        self.ignore_location_filter = False  # an invalid/ignored location filter: every location
        self.camel_only = False  # the April 2026 reading: lowercase orderby → 400
        self.fail_keys: dict[str, Exception] = {}

    async def list_records(
        self,
        api_key: str,
        table: str,
        *,
        where: dict[str, Any] | None,
        orderby: dict[str, str] | None,
        orderby_param: str,
        limit: int,
        skip: int,
    ) -> Page:
        self.calls.append(
            {
                "key": api_key,
                "table": table,
                "where": where,
                "orderby": orderby,
                "param": orderby_param,
                "limit": limit,
                "skip": skip,
            }
        )
        if api_key in self.fail_keys:
            raise self.fail_keys[api_key]
        company = self.world.by_key.get(api_key)
        if company is None:
            raise ShopmonkeyRejected(401, "Unauthorized")
        if self.camel_only and orderby is not None and orderby_param == "orderby":
            raise OrderByRejected(400, "Invalid Usage: Unable to parse orderby")
        records = list((company.orders if table == "order" else company.customers).values())
        if where and self.ignore_location_filter:
            where = {k: v for k, v in where.items() if k != "locationId"}
        if where and records and not self.ignore_filter:
            records = [r for r in records if matches(r, where, frozenset(records[0]))]
        if orderby and not self.ignore_orderby:
            records = order_records(records, orderby)
        page = records[skip : skip + min(limit, 100)]
        return Page(
            data=json.loads(json.dumps(page)),
            total=len(records),
            has_more=skip + len(page) < len(records),
        )


class FakeCursors:
    """`PollCursors` by Shopmonkey company id."""

    def __init__(self) -> None:
        self.cursors: dict[tuple[str, str], datetime | None] = {}
        self.errors: dict[str, str] = {}
        self.successes: list[str] = []

    async def load(self, company_id: str, kind: str) -> datetime | None:
        return self.cursors.get((company_id, kind))

    async def advance(self, company_id: str, kind: str, cursor_at: datetime | None) -> None:
        old = self.cursors.get((company_id, kind))
        if cursor_at is not None and (old is None or cursor_at > old):
            self.cursors[(company_id, kind)] = cursor_at
        self.errors.pop(company_id, None)
        self.successes.append(company_id)

    async def record_error(self, company_id: str, kind: str, error: str) -> None:
        self.errors[company_id] = error


def unavailable() -> ShopmonkeyUnavailable:
    return ShopmonkeyUnavailable("Shopmonkey customer: no answer within 3.0s")


def now_ts() -> float:
    return time.time()
