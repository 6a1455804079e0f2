"""The poller (seed: "Polling Backup, every 30 s, catches missed webhook events").

Every cycle, for each active Shopmonkey company with an API key and active locations
(tenants), concurrently but bounded: read the company's orders (and customers, appointments)
changed since its cursor minus the overlap ONCE, with its key (Shopmonkey's rate limit is per
key: one read serves every location), the orders and appointments filtered to its tenants'
locations in `where`; route every record itself (`domain.routing`: the API may ignore a
location filter and answer the whole table, so each record's own `locationId` decides) — an
order or an appointment to its location's tenant or to none (counted, never attributed
elsewhere), a customer change to every tenant of the company; an appointment without
`orderId` is skipped (no lead); an invoiced or paid order that embeds no services has them
read (`GET /v3/order/:id/service`, with `services`) for its service lines; a key refused the
appointments (401/403) costs only them;
complete their customers, produce OrderEvents whose `event_id` equals the webhook path's, and
only once Kafka acknowledged all of them move the company's cursor in PostgreSQL. A company's
failure is recorded in its cursor row (`last_error`) and counted; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.base import LeadIdKey, utcnow
from schemas.events import OrderSource
from services.ingest.adapters.metrics import (
    CURSOR_AGES,
    POLLER_CYCLE_SECONDS,
    POLLER_ERRORS,
    POLLER_EVENTS,
)
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.normalise import change_time
from services.ingest.domain.routing import Unrouted, route_customer, route_order
from services.ingest.errors import InvalidPayload, ShopmonkeyRejected, Unavailable
from services.ingest.ports import (
    ConsentStore,
    CustomerLocations,
    CustomerSource,
    EventPublisher,
    OrderServices,
    PollCursors,
    TenantDirectory,
)
from services.ingest.service_layer.order_events import (
    demo_admits,
    polled_drafts,
    refused,
    told_elsewhere,
    unrouted,
)
from services.ingest.service_layer.record_reader import RecordReader
from services.ingest.service_layer.seen_events import SeenEvents

log = logging.getLogger(__name__)
CURSOR_KINDS = {"order": "poll", "customer": "poll_customer", "appointment": "poll_appointment"}
#: Tables read with the location filter and routed by their own location, like orders.
LOCATED = frozenset({"order", "appointment"})


@dataclass(frozen=True, slots=True)
class PollerConfig:
    #: the deployment secret lead ids are derived under (ID_SECRET)
    lead_ids: LeadIdKey
    interval: float = 30.0
    overlap: float = 120.0
    initial_lookback: float = 3600.0
    concurrency: int = 8
    demo_mode: bool = False
    whitelist: frozenset[str] = frozenset()
    tables: tuple[str, ...] = ("order", "customer", "appointment")
    fetch_concurrency: int = 4
    publish_batch: int = 500
    #: poll just the companies of these tenants (operators, tests)
    only: frozenset[uuid.UUID] | None = None


@dataclass(frozen=True, slots=True)
class CompanyPoll:
    company_id: str
    read: int
    produced: int
    pages: int
    unrouted: int = 0


class Poller:
    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        reader: RecordReader,
        customers: CustomerSource,
        publisher: EventPublisher,
        cursors: PollCursors,
        config: PollerConfig,
        seen_events: SeenEvents | None = None,
        consents: ConsentStore | None = None,
        services: OrderServices | None = None,
        locations: CustomerLocations | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """`locations`: where the company's customers have had orders (`told_elsewhere`)."""
        self._consents = consents
        self._locations = locations
        self._services = services
        self._tenants = tenants
        self._reader = reader
        self._customers = customers
        self._publisher = publisher
        self._cursors = cursors
        self._config = config
        self._seen_events = seen_events or SeenEvents()
        self._clock = clock
        self.cycles = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            await self.poll_all()
            wait = max(0.0, self._config.interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=wait)

    async def poll_all(self) -> list[CompanyPoll | None]:
        """One cycle over every pollable company; None marks a company that failed."""
        started = time.monotonic()
        try:
            companies = await self._tenants.pollable()
        except Unavailable as exc:
            log.error("poll cycle skipped: %s", exc)
            return []
        if (only := self._config.only) is not None:
            companies = [c for c in companies if not only.isdisjoint(c.by_id)]
        gate = asyncio.Semaphore(self._config.concurrency)

        async def one(company: IngestCompany) -> CompanyPoll | None:
            async with gate:
                return await self._poll_guarded(company)

        results = await asyncio.gather(*(one(c) for c in companies))
        self.cycles += 1
        POLLER_CYCLE_SECONDS.observe(time.monotonic() - started)
        return list(results)

    async def _poll_guarded(self, company: IngestCompany) -> CompanyPoll | None:
        # The one place a company's failure is decided: record it, count it, go on.
        try:
            return await self.poll_company(company)
        except Exception as exc:
            kind = type(exc).__name__
            POLLER_ERRORS.labels(company.id, kind).inc()
            log.warning("poll of company %s failed: %s: %s", company.id, kind, exc)
            try:
                await self._cursors.record_error(company.id, "poll", f"{kind}: {exc}")
            except Unavailable as db_exc:
                log.error("could not record the poll error: %s", db_exc)
            return None

    async def poll_company(self, company: IngestCompany) -> CompanyPoll:
        read = produced = pages = ignored = 0
        for table in self._config.tables:
            kind = CURSOR_KINDS[table]
            now = self._clock()
            cursor = await self._cursors.load(company.id, kind)
            since = (
                cursor - timedelta(seconds=self._config.overlap)
                if cursor is not None
                else now - timedelta(seconds=self._config.initial_lookback)
            )
            where = (
                {"locationId": {"in": sorted(company.by_location)}} if table in LOCATED else None
            )
            try:
                report = await self._reader.read(company, table, since, where=where)
            except ShopmonkeyRejected as exc:
                if table != "appointment":
                    raise
                # a key without the appointments right: orders and customers still count
                POLLER_ERRORS.labels(company.id, type(exc).__name__).inc()
                log.warning("appointments of company %s not polled: %s", company.id, exc)
                continue
            records = sorted(report.records.values(), key=_change_key)
            events, missed = await self._events(company, table, records, now)
            await self._publish(events)
            for tenant_id, count in Counter(e.tenant_id for e in events).items():
                POLLER_EVENTS.labels(str(tenant_id)).inc(count)
            if not report.complete:
                log.warning("incomplete read of /%s of company %s: cursor kept", table, company.id)
            await self._cursors.advance(
                company.id, kind, report.max_change if report.complete else None
            )
            read += len(records)
            produced += len(events)
            pages += report.pages
            ignored += missed
        CURSOR_AGES.success(company.id)
        if produced:
            log.info(
                "polled %d changed records of company %s, produced %d events (%d unrouted)",
                read,
                company.id,
                produced,
                ignored,
            )
        return CompanyPoll(company.id, read, produced, pages, ignored)

    async def _events(
        self, company: IngestCompany, table: str, records: list[dict[str, Any]], now: datetime
    ) -> tuple[list[OrderEventDraft], int]:
        """The records' events, each routed to its tenant(s); and how many went nowhere."""
        gate = asyncio.Semaphore(self._config.fetch_concurrency)
        missed = 0

        def targets(data: dict[str, Any]) -> tuple[IngestTenant, ...]:
            nonlocal missed
            routed = (
                route_order(company, data) if table in LOCATED else route_customer(company, data)
            )
            if isinstance(routed, Unrouted):
                missed += 1
                unrouted(company, table, routed, source=OrderSource.POLL)
                return ()
            return (routed,) if isinstance(routed, IngestTenant) else routed

        async def one(data: dict[str, Any], to: tuple[IngestTenant, ...]) -> list[OrderEventDraft]:
            try:
                events = await polled_drafts(
                    company,
                    table,
                    data,
                    self._customers,
                    targets=to,
                    source=OrderSource.POLL,
                    now=now,
                    gate=gate,
                    ids=self._config.lead_ids,
                    seen=self._seen_events,
                    consents=self._consents,
                    services=self._services,
                )
            except InvalidPayload as exc:  # one record refused; the others go on
                refused(OrderSource.POLL, table, exc, company)
                return []
            config = self._config
            if events and not demo_admits(
                events[0], demo_mode=config.demo_mode, whitelist=config.whitelist
            ):
                return []  # one customer, one decision for all its tenants' events
            return await told_elsewhere(company, events, self._locations)

        routed = [(r, to) for r in records if (to := targets(r))]
        built = await asyncio.gather(*(one(r, to) for r, to in routed))
        return [e for group in built for e in group], missed

    async def _publish(self, events: list[OrderEventDraft]) -> None:
        """All acknowledged, in order per tenant (one key, one partition), or raise."""
        size = self._config.publish_batch
        for start in range(0, len(events), size):
            batch = events[start : start + size]
            results = await asyncio.gather(
                *(self._publisher.publish(e) for e in batch), return_exceptions=True
            )
            for result in results:
                if isinstance(result, BaseException):
                    raise result
            for event in batch:
                self._seen_events.add(event.event_id, event.lead_id)


def _change_key(record: dict[str, Any]) -> datetime:
    return change_time(record) or datetime.min.replace(tzinfo=UTC)
