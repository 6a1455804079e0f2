"""One Shopmonkey webhook delivery: verify the raw body, parse, route, normalise, produce, answer.

A delivery comes to a company (the company URL, or a location URL naming one of its tenants)
and is verified with the company's secret. Order of checks: signature (401) on the raw bytes
before anything is parsed, then content type (415), JSON and envelope (400). Tables other than
order/customer/appointment are acknowledged and ignored (202). Then routing
(`domain.routing`): an order, or an appointment, goes to the tenant of its own location, or to
none (202 "ignored" with the reason, counted); a customer change goes to every tenant of the
company (one event each, same `event_id`). An appointment without `orderId` belongs to no lead
(202 "ignored", with the reason); one with it is its order's lead's event (the order's
`lead_id`). No Shopmonkey read but the customer look-up: an order's service lines are those
its body embeds (none: empty; the poller reads them for invoiced orders). The
answer is `Accepted` only after Kafka acknowledged every record, after the consent a
customer record carries is committed to PostgreSQL (`service_layer.consent`), and after an
order's customer is recorded at its location (`told_elsewhere`: published meanwhile, the
order's record does not wait for it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas.base import LeadIdKey
from schemas.events import OrderSource
from services.common.domain.consent import ConsentRecord
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import DROP_REASON
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.envelope import Envelope, parse_envelope
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.routing import (
    NO_TENANTS,
    UNKNOWN_LOCATION,
    Unrouted,
    route_customer,
    route_order,
)
from services.ingest.domain.shopmonkey_signatures import verify
from services.ingest.errors import InvalidPayload, UnsupportedMediaType
from services.ingest.ports import (
    ConsentStore,
    CustomerLocations,
    CustomerSource,
    EventPublisher,
    TenantDirectory,
)
from services.ingest.service_layer.consent import consent_records
from services.ingest.service_layer.order_events import (
    asks_locations,
    build_drafts,
    complete_contact,
    demo_admits,
    known_contact,
    needs_lookup,
    told_elsewhere,
    unrouted,
)
from services.ingest.service_layer.seen_events import SeenEvents

log = logging.getLogger(__name__)
JSON_TYPES = frozenset({"application/json"})


@dataclass(frozen=True, slots=True)
class Accepted:
    event_id: str
    lead_id: uuid.UUID | None
    duplicate: bool = False

    @property
    def outcome(self) -> str:
        return "duplicate" if self.duplicate else "accepted"


@dataclass(frozen=True, slots=True)
class Ignored:
    reason: str
    outcome: str = "ignored"


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    demo_mode: bool
    whitelist: frozenset[str]
    #: the deployment secret lead ids are derived under (ID_SECRET)
    lead_ids: LeadIdKey
    tolerance: int = 300


def require_json(content_type: str) -> None:
    if content_type == "application/json":
        return
    if content_type.lower() not in JSON_TYPES and not content_type.lower().endswith("+json"):
        raise UnsupportedMediaType(f"content type must be application/json, not {content_type!r}")


def load_json(body: bytes) -> object:
    """Strict JSON (UTF-8, no NaN, integers within 64 bits), with orjson (faster than `json`)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidPayload("body is not valid JSON") from None


def _targets(
    company: IngestCompany,
    table: str,
    data: Mapping[str, Any],
    tenant: IngestTenant | None,
) -> tuple[IngestTenant, ...] | Unrouted:
    """The tenants a delivery of `table` belongs to; `tenant`: the location URL's."""
    if table == "customer":
        return route_customer(company, data)
    # an appointment is its location's, like an order
    routed = route_order(company, data, default=tenant)
    return routed if isinstance(routed, Unrouted) else (routed,)


class WebhookIngest:
    def __init__(
        self,
        *,
        customers: CustomerSource,
        publisher: EventPublisher,
        config: WebhookConfig,
        seen_events: SeenEvents,
        consents: ConsentStore | None = None,
        tenants: TenantDirectory | None = None,
        locations: CustomerLocations | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`tenants`: read again when a delivery names a location its company does not have
        (yet): a location created a moment ago, whose change the directory has not read,
        must not have its first orders ignored. `locations`: where the company's customers
        have had orders (`told_elsewhere`)."""
        self._customers = customers
        self._tenants = tenants
        self._consents = consents
        self._locations = locations
        self._publisher = publisher
        self._config = config
        self._seen_events = seen_events
        self._clock = clock

    async def handle(
        self,
        company: IngestCompany,
        headers: Mapping[str, str],
        body: bytes,
        content_type: str,
        *,
        tenant: IngestTenant | None = None,
    ) -> Accepted | Ignored:
        """`tenant`: the location URL's tenant (None on the company URL)."""
        now = self._clock()
        verify(company.webhook_keys, headers, body, now=now, tolerance=self._config.tolerance)
        require_json(content_type)
        envelope = parse_envelope(load_json(body))
        table = envelope.table
        if table not in ("order", "appointment", "customer"):
            return Ignored(f"table '{table}' is not ingested")
        targets = _targets(company, table, envelope.data, tenant)
        if (
            isinstance(targets, Unrouted)
            and targets.code in (UNKNOWN_LOCATION, NO_TENANTS)
            and self._tenants is not None
        ):
            # signed by the company, so only its own deliveries can ask for this read
            fresh = await self._tenants.company_anew(company.id)
            if fresh is not None and fresh is not company:
                company = fresh
                targets = _targets(company, table, envelope.data, tenant)
        if isinstance(targets, Unrouted):
            unrouted(company, table, targets, source=OrderSource.WEBHOOK)
            return Ignored(str(targets), outcome="unrouted")
        if table == "appointment" and (
            why := normalise.appointment_unusable(envelope.data, envelope.operation)
        ):
            return Ignored(why)  # no lead to remind of it: not an error
        facts = normalise.facts_of(table, envelope.data, envelope.operation, rid=envelope.rid)
        event_id = facts.event_id
        # the awaits below only when needed: most deliveries need neither (no suspension)
        begun = self._seen_events.try_begin(event_id)
        seen, lead_id = await self._seen_events.begin(event_id) if begun is None else begun
        if seen:
            return Accepted(event_id, lead_id, duplicate=True)
        try:
            # committed before Kafka and the answer (the gate reads it on the next touch), and
            # whatever becomes of the record's event: with the order's visit when there is one
            consent: Sequence[ConsentRecord] = ()
            if self._consents is not None and (table == "customer" or "customer" in envelope.data):
                consent = consent_records(
                    table, envelope.data, event_key=event_id, now=datetime.fromtimestamp(now, UTC)
                )
            try:
                events = await self._drafts(company, targets, envelope, facts, now)
            except Exception:  # a refused record (4xx) or a failed look-up (5xx)
                await self._keep(company, consent)
                raise
            if not demo_admits(
                events[0], demo_mode=self._config.demo_mode, whitelist=self._config.whitelist
            ):
                await self._keep(company, consent)
                return Ignored(DROP_REASON, outcome="demo_dropped")
            if asks_locations(company, events, self._locations):
                events = await self._with_locations(company, events, consent)
            else:  # nothing to wait for: told (without a store, every location) or not
                await self._keep(company, consent)
                events = await told_elsewhere(company, events, self._locations)
                await _publish(self._publisher, events)
            lead_id = events[0].lead_id
            self._seen_events.add(event_id, lead_id)
        finally:
            self._seen_events.end(event_id)
        log.debug("ingested %s", event_id, extra={"tenant_id": events[0].tenant_id})
        return Accepted(event_id, lead_id)

    async def _drafts(
        self,
        company: IngestCompany,
        targets: tuple[IngestTenant, ...],
        envelope: Envelope,
        facts: normalise.Facts,
        now: float,
    ) -> list[OrderEventDraft]:
        table, data = envelope.table, envelope.data
        adjusted: normalise.Adjusted = []
        contact = known_contact(table, data, adjusted)
        if needs_lookup(company, contact):
            contact = await complete_contact(company, table, contact, self._customers, adjusted)
        return build_drafts(
            targets,
            table,
            data,
            operation=envelope.operation,
            source=OrderSource.WEBHOOK,
            contact=contact,
            now=datetime.fromtimestamp(now, UTC),
            ids=self._config.lead_ids,
            facts=facts,
            adjusted=adjusted,
        )

    async def _keep(self, company: IngestCompany, consent: Sequence[ConsentRecord]) -> None:
        if consent:
            assert self._consents is not None  # records only come with a store
            await self._consents.record(company.id, consent)

    async def _with_locations(
        self,
        company: IngestCompany,
        events: list[OrderEventDraft],
        consent: Sequence[ConsentRecord],
    ) -> list[OrderEventDraft]:
        """Record the customer's visit and tell the other locations the answer names; the
        answer waits for the visit and every record. A failure of either is a 5xx, and the
        retry records and publishes again (the event once, by its id).

        With `consent`, it is committed with the visit (one round trip, where the consent
        and then the visit were two in turn) and every record is published after it. Without,
        the order's event is published while the visit is recorded (its way to the sequencer
        does not wait for PostgreSQL)."""
        if consent:
            told = await told_elsewhere(company, events, self._locations, consent=consent)
            await _publish(self._publisher, told)
            return told
        own = asyncio.ensure_future(self._publisher.publish(events[0]))
        try:
            told = await told_elsewhere(company, events, self._locations)
        except BaseException:
            own.add_done_callback(_retrieved)  # goes on alone; its outcome is this one's 5xx
            raise
        await own
        if len(told) > 1:
            await _publish_all(self._publisher, told[1:])
        return told


def _retrieved(done: asyncio.Future[None]) -> None:
    if not done.cancelled():
        done.exception()


async def _publish(publisher: EventPublisher, events: list[OrderEventDraft]) -> None:
    """`_publish_all`, without its task when there is one event."""
    if len(events) == 1:
        await publisher.publish(events[0])
    else:
        await _publish_all(publisher, events)


async def _publish_all(publisher: EventPublisher, events: list[OrderEventDraft]) -> None:
    """Every event acknowledged, or the first failure raised (after all were attempted)."""
    results = await asyncio.gather(*(publisher.publish(e) for e in events), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
