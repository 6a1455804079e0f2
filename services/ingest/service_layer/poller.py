"""The poller (seed: "Polling Backup, every 30 s, catches missed webhook events").

Every cycle, for each active tenant with its own API key, concurrently but bounded: read the
orders (and customers) changed since the tenant's cursor minus the overlap, complete their
customers, produce OrderEvents whose `event_id` equals the webhook path's, and only once Kafka
acknowledged all of them move the cursor in PostgreSQL. A tenant's failure is recorded in its
cursor row (`last_error`) and counted; the others carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.base import utcnow
from schemas.events import OrderSource
from services.ingest.adapters.metrics import (
    CURSOR_AGES,
    POLLER_CYCLE_SECONDS,
    POLLER_ERRORS,
    POLLER_EVENTS,
)
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.model import IngestTenant
from services.ingest.domain.normalise import change_time
from services.ingest.errors import InvalidPayload, Unavailable
from services.ingest.ports import CustomerSource, EventPublisher, PollCursors, TenantDirectory
from services.ingest.service_layer.order_events import demo_admits, polled_draft, refused
from services.ingest.service_layer.record_reader import RecordReader
from services.ingest.service_layer.seen_events import SeenEvents

log = logging.getLogger(__name__)
CURSOR_KINDS = {"order": "poll", "customer": "poll_customer"}


@dataclass(frozen=True, slots=True)
class PollerConfig:
    interval: float = 30.0
    overlap: float = 120.0
    initial_lookback: float = 3600.0
    concurrency: int = 8
    demo_mode: bool = False
    whitelist: frozenset[str] = frozenset()
    tables: tuple[str, ...] = ("order", "customer")
    fetch_concurrency: int = 4
    publish_batch: int = 500
    only: frozenset[uuid.UUID] | None = None  # poll just these tenants (operators, tests)


@dataclass(frozen=True, slots=True)
class TenantPoll:
    tenant_id: Any
    read: int
    produced: int
    pages: int


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
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
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

    async def poll_all(self) -> list[TenantPoll | None]:
        """One cycle over every pollable tenant; None marks a tenant that failed."""
        started = time.monotonic()
        try:
            tenants = await self._tenants.pollable()
        except Unavailable as exc:
            log.error("poll cycle skipped: %s", exc)
            return []
        if self._config.only is not None:
            tenants = [t for t in tenants if t.id in self._config.only]
        gate = asyncio.Semaphore(self._config.concurrency)

        async def one(tenant: IngestTenant) -> TenantPoll | None:
            async with gate:
                return await self._poll_guarded(tenant)

        results = await asyncio.gather(*(one(t) for t in tenants))
        self.cycles += 1
        POLLER_CYCLE_SECONDS.observe(time.monotonic() - started)
        return list(results)

    async def _poll_guarded(self, tenant: IngestTenant) -> TenantPoll | None:
        # The one place a tenant's failure is decided: record it, count it, go on.
        try:
            return await self.poll_tenant(tenant)
        except Exception as exc:
            kind = type(exc).__name__
            POLLER_ERRORS.labels(str(tenant.id), kind).inc()
            log.warning("poll failed: %s: %s", kind, exc, extra={"tenant_id": tenant.id})
            try:
                await self._cursors.record_error(tenant.id, "poll", f"{kind}: {exc}")
            except Unavailable as db_exc:
                log.error("could not record the poll error: %s", db_exc)
            return None

    async def poll_tenant(self, tenant: IngestTenant) -> TenantPoll:
        read = produced = pages = 0
        for table in self._config.tables:
            kind = CURSOR_KINDS[table]
            now = self._clock()
            cursor = await self._cursors.load(tenant.id, kind)
            since = (
                cursor - timedelta(seconds=self._config.overlap)
                if cursor is not None
                else now - timedelta(seconds=self._config.initial_lookback)
            )
            report = await self._reader.read(tenant, table, since)
            records = sorted(report.records.values(), key=_change_key)
            events = await self._events(tenant, table, records, now)
            await self._publish(events)
            if not report.complete:
                log.warning(
                    "incomplete read of /%s: cursor kept", table, extra={"tenant_id": tenant.id}
                )
            await self._cursors.advance(
                tenant.id, kind, report.max_change if report.complete else None
            )
            read += len(records)
            produced += len(events)
            pages += report.pages
        CURSOR_AGES.success(tenant.id)
        if produced:
            POLLER_EVENTS.labels(str(tenant.id)).inc(produced)
            log.info(
                "polled %d changed records, produced %d events",
                read,
                produced,
                extra={"tenant_id": tenant.id},
            )
        return TenantPoll(tenant.id, read, produced, pages)

    async def _events(
        self, tenant: IngestTenant, table: str, records: list[dict[str, Any]], now: datetime
    ) -> list[OrderEventDraft]:
        gate = asyncio.Semaphore(self._config.fetch_concurrency)

        async def one(data: dict[str, Any]) -> OrderEventDraft | None:
            try:
                event = await polled_draft(
                    tenant,
                    table,
                    data,
                    self._customers,
                    source=OrderSource.POLL,
                    now=now,
                    gate=gate,
                    seen=self._seen_events,
                )
            except InvalidPayload as exc:  # one record refused; the others go on
                refused(OrderSource.POLL, table, exc, tenant.id)
                return None
            if event is None or not demo_admits(
                event, demo_mode=self._config.demo_mode, whitelist=self._config.whitelist
            ):
                return None
            return event

        built = await asyncio.gather(*(one(r) for r in records))
        return [e for e in built if e is not None]

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
