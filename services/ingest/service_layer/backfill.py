"""`leadctl backfill`: page one location's Shopmonkey orders created since a time into
`leads.order-events.v1` (source `backfill`), resumably.

- The location's company is read with the company's key, asking for the location's orders
  (`locationId` in `where`); the API may ignore that filter, so every order is routed by its
  own `locationId` (`domain.routing`): only this tenant's become events; another tenant's
  are left to that tenant's backfill, and those of no tenant are counted (`unrouted`).

- Keyset paging on `createdDate` (immutable, so an order updated meanwhile does not move) with
  the poller's reader (`RecordReader.page`, `Keyset`): each page asks `createdDate >= <last
  instant read>` ordered ascending with `skip` = the orders already produced at exactly that
  instant; `limit` 100 (the API's cap).
- Each order becomes the event the webhook/poller path builds (same `event_id`
  `shopmonkey:order:<id>:<meta.version>`, same `lead_id`), completed with its customer's
  contact details and, invoiced or paid, its services (`GET /v3/order/:id/service`, paced by
  the same limiter) as service lines; a re-run or an overlap with the poller is deduplicated
  downstream.
- The page's events are all acknowledged by Kafka before the position (`BackfillCursors`, per
  tenant and `since`) moves: a killed backfill resumes at the first page not fully
  acknowledged, and re-sends at most that page (same event ids).
- Orders older than `max_age` are produced with `plan_touchpoints=False`: the sequencer
  creates the lead but plans no touch point (no estimate follow-up for last year's order).
- Unlike the poller, a filter or sort the API ignored is refused (`BackfillError`), not
  scanned around: a resumable position cannot be guessed then.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from schemas.base import LeadIdKey, utcnow
from schemas.events import OrderSource
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.model import BackfillPosition, IngestCompany, IngestTenant, Page
from services.ingest.domain.normalise import parse_ts
from services.ingest.domain.routing import Unrouted, route_order
from services.ingest.errors import BackfillError, InvalidPayload
from services.ingest.ports import (
    BackfillCursors,
    ConsentStore,
    CustomerLocations,
    CustomerSource,
    EventPublisher,
    OrderServices,
)
from services.ingest.service_layer.order_events import (
    demo_admits,
    polled_drafts,
    refused,
    told_elsewhere,
    unrouted,
)
from services.ingest.service_layer.record_reader import Keyset, RecordReader

FIELD = "createdDate"


class Backfill:
    def __init__(
        self,
        *,
        company: IngestCompany,
        tenant: IngestTenant,
        since: datetime,
        reader: RecordReader,
        customers: CustomerSource,
        publisher: EventPublisher,
        cursors: BackfillCursors,
        max_age: timedelta,
        lead_ids: LeadIdKey,
        demo_mode: bool = False,
        whitelist: frozenset[str] = frozenset(),
        fetch_concurrency: int = 4,
        consents: ConsentStore | None = None,
        services: OrderServices | None = None,
        locations: CustomerLocations | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`locations`: where the company's customers have had orders; each backfilled order
        is recorded there (a later order elsewhere tells this location), nobody is told."""
        self._consents = consents
        self._locations = locations
        self._services = services
        if not company.shopmonkey_api_key:
            raise BackfillError(f"company {company.id} of tenant {tenant.id} has no API key")
        self.company = company
        self.tenant = tenant
        self.since = since
        self._reader = reader
        self._customers = customers
        self._publisher = publisher
        self._cursors = cursors
        self._max_age = max_age
        self._lead_ids = lead_ids
        self._demo = demo_mode
        self._whitelist = whitelist
        self._gate = asyncio.Semaphore(fetch_concurrency)
        self._clock = clock
        self.dropped = 0
        self.unplanned = 0
        #: orders of the company read but not this tenant's (another location's; none's)
        self.elsewhere = 0

    async def _page(self, keyset: Keyset, limit: int | None = None) -> Page:
        return await self._reader.page(
            self.company,
            "order",
            where={"locationId": self.tenant.location_id, FIELD: {"gte": keyset.raw}},
            order_field=FIELD,
            skip=keyset.skip,
            limit=limit,
        )

    async def position(self) -> BackfillPosition | None:
        """Where an earlier run of this backfill stopped (None: never started)."""
        return await self._cursors.load(self.tenant.id, self.since)

    async def total(self) -> int | None:
        """How many orders were created since `since` (as the API counts them)."""
        return (await self._page(Keyset.start(self.since), limit=1)).total

    def _ours(self, data: dict[str, Any]) -> bool:
        """Whether the order is this tenant's (counted when it is nobody's)."""
        routed = route_order(self.company, data)
        if isinstance(routed, Unrouted):
            unrouted(self.company, "order", routed, source=OrderSource.BACKFILL)
        elif routed.id == self.tenant.id:
            return True
        self.elsewhere += 1
        return False

    async def _event(self, data: dict[str, Any], now: datetime) -> OrderEventDraft | None:
        try:
            [event] = await polled_drafts(
                self.company,
                "order",
                data,
                self._customers,
                targets=(self.tenant,),
                source=OrderSource.BACKFILL,
                now=now,
                gate=self._gate,
                ids=self._lead_ids,
                consents=self._consents,
                services=self._services,
            )
        except InvalidPayload as exc:  # one record refused; the page goes on
            refused(OrderSource.BACKFILL, "order", exc, self.company)
            return None
        created = parse_ts(data.get(FIELD)) or event.occurred_at
        if created < now - self._max_age:
            event.plan_no_touchpoints()
            self.unplanned += 1
        if not demo_admits(event, demo_mode=self._demo, whitelist=self._whitelist):
            self.dropped += 1
            return None
        await told_elsewhere(self.company, [event], self._locations, tell=False)
        return event

    def _check(self, page: Page, lower: datetime) -> None:
        stamps = [parse_ts(r.get(FIELD)) for r in page.data]
        if any(s is None or s < lower for s in stamps):
            raise BackfillError(
                "Shopmonkey ignored the createdDate filter (records outside the window): "
                "refusing to guess a resumable position"
            )
        times = [s for s in stamps if s is not None]
        if any(a > b for a, b in itertools.pairwise(times)):
            raise BackfillError("Shopmonkey ignored orderby on createdDate: pages unstable")

    async def run(
        self, *, restart: bool = False, on_page: Callable[[int], None] | None = None
    ) -> BackfillPosition:
        """Page to the end; returns the final position. `on_page(n)` after each acked page."""
        position = await self._cursors.start(self.tenant.id, self.since, restart=restart)
        if position.status == "done":
            return position
        keyset = Keyset.start(position.at, position.skip)
        while True:
            asked = keyset.skip
            page = await self._page(keyset)
            self._check(page, keyset.at)
            now = self._clock()
            ours = [r for r in page.data if self._ours(r)]
            built = await asyncio.gather(*(self._event(r, now) for r in ours))
            events = [e for e in built if e is not None]
            await asyncio.gather(*(self._publisher.publish(e) for e in events))
            # every event of the page is acknowledged: only now may the position move
            if page.data:
                keyset.advance(page, FIELD)
            position.at, position.skip = keyset.at, keyset.skip
            position.produced += len(ours)
            position.pages += 1
            finished = self._reader.finished(page, asked)
            await self._cursors.advance(self.tenant.id, self.since, position, done=finished)
            if on_page is not None:
                on_page(len(page.data))
            if finished:
                position.status = "done"
                return position
