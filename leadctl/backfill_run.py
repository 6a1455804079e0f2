"""`leadctl backfill`'s engine: page one location's Shopmonkey orders created since a time into
`leads.order-events.v1` (source `backfill`), resumably.

- Keyset paging on `createdDate` (immutable, so an order updated meanwhile does not move):
  each page asks `createdDate >= <cursor>` ordered ascending with `skip` = orders already
  produced at exactly that instant; `limit` 100 (the API's cap).
- Each order becomes the OrderEvent the webhook/poller path builds (same `event_id`
  `shopmonkey:order:<id>:<meta.version>`, same `lead_id`), completed with its customer's
  contact details; a re-run or an overlap with the poller is deduplicated downstream.
- The page's events are all acknowledged by Kafka before the cursor row
  (`backfill_cursors`, per tenant and `since`) moves: a killed backfill resumes at the first
  page not fully acknowledged, and re-sends at most that page (same event ids).
- Orders older than `max_age` are produced with `plan_touchpoints=False`: the sequencer
  creates the lead but plans no touch point (no estimate follow-up for last year's order).
- Every Shopmonkey request takes a token from a per-run rate limiter; 429 honours
  Retry-After in the client.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import func

from schemas.base import utcnow
from schemas.events import OrderEvent, OrderSource
from services.common.db.models import BackfillCursor
from services.common.errors import LeadOrchestratorError
from services.ingest.adapters.shopmonkey_client import ShopmonkeyClient
from services.ingest.domain.model import IngestTenant, Page
from services.ingest.domain.normalise import iso_z, parse_ts, polled_operation
from services.ingest.errors import OrderByRejected
from services.ingest.ports import CustomerSource, EventPublisher
from services.ingest.service_layer.order_events import build_event, demo_admits, resolve_customer

PAGE = 100
FIELD = "createdDate"


class BackfillError(LeadOrchestratorError):
    pass


class RateLimiter:
    """At most `per_minute` acquisitions per rolling minute, evenly spaced (burst 1)."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 60.0 / per_minute if per_minute > 0 else 0.0
        self._clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        if not self._interval:
            return
        async with self._lock:
            now = self._clock()
            wait = self._next - now
            self._next = max(now, self._next) + self._interval
        if wait > 0:
            await asyncio.sleep(wait)


class ThrottledClient(ShopmonkeyClient):
    """The ingest Shopmonkey client, every request behind the rate limiter."""

    def __init__(self, base_url: str, *, timeout: float, limiter: RateLimiter) -> None:
        super().__init__(base_url, timeout=timeout)
        self._limiter = limiter

    async def _get(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        await self._limiter.acquire()
        return await super()._get(*args, **kwargs)


@dataclass
class Cursor:
    at: datetime
    skip: int
    produced: int
    pages: int
    status: str


@dataclass
class Progress:
    total: int | None
    produced: int
    resumed: bool


class CursorStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def load(self, tenant_id: uuid.UUID, since: datetime) -> Cursor | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    select(BackfillCursor).where(
                        BackfillCursor.tenant_id == tenant_id, BackfillCursor.since == since
                    )
                )
            ).one_or_none()
        if row is None:
            return None
        return Cursor(
            row.cursor_at or since, row.cursor_skip, row.orders_produced, row.pages, row.status
        )

    async def start(self, tenant_id: uuid.UUID, since: datetime, *, restart: bool) -> Cursor:
        found = await self.load(tenant_id, since)
        async with self._engine.begin() as conn:
            if found is None:
                await conn.execute(insert(BackfillCursor).values(tenant_id=tenant_id, since=since))
            elif restart:
                await conn.execute(
                    self._where(tenant_id, since).values(
                        cursor_at=None,
                        cursor_skip=0,
                        orders_produced=0,
                        pages=0,
                        status="running",
                        finished_at=None,
                        started_at=func.now(),
                        updated_at=func.now(),
                    )
                )
        cursor = await self.load(tenant_id, since)
        assert cursor is not None
        return cursor

    def _where(self, tenant_id: uuid.UUID, since: datetime) -> Any:
        return update(BackfillCursor).where(
            BackfillCursor.tenant_id == tenant_id, BackfillCursor.since == since
        )

    async def advance(
        self, tenant_id: uuid.UUID, since: datetime, cursor: Cursor, *, done: bool
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                self._where(tenant_id, since).values(
                    cursor_at=cursor.at,
                    cursor_skip=cursor.skip,
                    orders_produced=cursor.produced,
                    pages=cursor.pages,
                    status="done" if done else "running",
                    finished_at=func.now() if done else None,
                    updated_at=func.now(),
                )
            )


class Backfill:
    def __init__(
        self,
        *,
        tenant: IngestTenant,
        since: datetime,
        client: ShopmonkeyClient,
        customers: CustomerSource,
        publisher: EventPublisher,
        cursors: CursorStore,
        max_age: timedelta,
        demo_mode: bool = False,
        whitelist: frozenset[str] = frozenset(),
        fetch_concurrency: int = 4,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if not tenant.shopmonkey_api_key:
            raise BackfillError(f"tenant {tenant.id} has no Shopmonkey API key")
        self.tenant = tenant
        self.since = since
        self._key = tenant.shopmonkey_api_key
        self._client = client
        self._customers = customers
        self._publisher = publisher
        self._cursors = cursors
        self._max_age = max_age
        self._demo = demo_mode
        self._whitelist = whitelist
        self._gate = asyncio.Semaphore(fetch_concurrency)
        self._clock = clock
        self._orderby = "orderby"
        self.dropped = 0
        self.unplanned = 0

    async def _page(self, lower: str, skip: int, limit: int = PAGE) -> Page:
        while True:
            try:
                return await self._client.list_records(
                    self._key,
                    "order",
                    where={FIELD: {"gte": lower}},
                    orderby={FIELD: "asc"},
                    orderby_param=self._orderby,
                    limit=limit,
                    skip=skip,
                )
            except OrderByRejected:
                if self._orderby == "orderBy":
                    raise
                self._orderby = "orderBy"

    async def cursor(self) -> Cursor | None:
        return await self._cursors.load(self.tenant.id, self.since)

    async def total(self) -> int | None:
        return (await self._page(iso_z(self.since), 0, limit=1)).total

    async def _event(self, data: dict[str, Any], now: datetime) -> OrderEvent | None:
        async with self._gate:
            customer = await resolve_customer(self.tenant, "order", data, self._customers)
        event = build_event(
            self.tenant,
            "order",
            data,
            operation=polled_operation(data),
            source=OrderSource.BACKFILL,
            customer=customer,
            now=now,
        )
        created = parse_ts(data.get(FIELD)) or event.occurred_at
        if created < now - self._max_age:
            event = event.model_copy(update={"plan_touchpoints": False})
            self.unplanned += 1
        if not demo_admits(event, demo_mode=self._demo, whitelist=self._whitelist):
            self.dropped += 1
            return None
        return event

    def _check(self, page: Page, lower: datetime) -> list[datetime]:
        stamps = [parse_ts(r.get(FIELD)) for r in page.data]
        if any(s is None or s < lower for s in stamps):
            raise BackfillError(
                "Shopmonkey ignored the createdDate filter (records outside the window): "
                "refusing to guess a resumable position"
            )
        times = [s for s in stamps if s is not None]
        if any(a > b for a, b in itertools.pairwise(times)):
            raise BackfillError("Shopmonkey ignored orderby on createdDate: pages unstable")
        return times

    async def run(
        self, *, restart: bool = False, on_page: Callable[[int], None] | None = None
    ) -> Cursor:
        """Page to the end; returns the final cursor. `on_page(n)` after each acked page."""
        cursor = await self._cursors.start(self.tenant.id, self.since, restart=restart)
        if cursor.status == "done":
            return cursor
        while True:
            page = await self._page(iso_z(cursor.at), cursor.skip)
            times = self._check(page, cursor.at)
            now = self._clock()
            built = await asyncio.gather(*(self._event(r, now) for r in page.data))
            events = [e for e in built if e is not None]
            await asyncio.gather(*(self._publisher.publish(e) for e in events))
            # every event of the page is acknowledged: only now may the cursor move
            if times:
                last = times[-1]
                at_last = sum(1 for t in times if t == last)
                cursor.skip = cursor.skip + at_last if last == cursor.at else at_last
                cursor.at = last
            cursor.produced += len(page.data)
            cursor.pages += 1
            finished = not page.data or (
                not page.has_more if page.has_more is not None else len(page.data) < PAGE
            )
            await self._cursors.advance(self.tenant.id, self.since, cursor, done=finished)
            if on_page is not None:
                on_page(len(page.data))
            if finished:
                cursor.status = "done"
                return cursor
