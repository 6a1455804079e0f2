"""Build an OrderEvent draft from a Shopmonkey record, fetching the customer's contact details
(with its company's key) when the record lacks them; the webhook path, the poller and the
backfill share it, so all three give equal events. Which tenant a record belongs to is
`domain.routing`'s answer; `unrouted` counts and logs a record that belongs to none."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from schemas import bounds
from schemas.base import LeadIdKey
from schemas.events import Operation, OrderEvent, OrderSource
from services.common.domain.consent import ConsentRecord
from services.common.masking import mask_email
from services.ingest.adapters.metrics import (
    DEMO_DROPPED,
    FIELDS_ADJUSTED,
    RECORDS_REFUSED,
    UNROUTED,
    child,
)
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import admits_email
from services.ingest.domain.draft import Contact, OrderEventDraft
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.routing import Unrouted
from services.ingest.errors import InvalidPayload, ShopmonkeyRejected
from services.ingest.ports import ConsentStore, CustomerLocations, CustomerSource, OrderServices
from services.ingest.service_layer.consent import keep_consent
from services.ingest.service_layer.seen_events import SeenEvents

log = logging.getLogger(__name__)


def known_contact(
    table: str, data: dict[str, Any], adjusted: normalise.Adjusted | None = None
) -> Contact:
    """What the record says about its customer (values cut or dropped noted in `adjusted`)."""
    if table == "customer":
        return normalise.contact_of_record(data, adjusted)
    return normalise.contact_of_order(data, adjusted)


def note_adjusted(
    adjusted: normalise.Adjusted, *, source: OrderSource, event_id: str, tenant_id: uuid.UUID
) -> None:
    """Count and log (info: the record was taken) what the normaliser cut or dropped."""
    for name, reason in adjusted:
        child(FIELDS_ADJUSTED, source.value, name, reason).inc()
    log.info(
        "%s: %s",
        event_id,
        ", ".join(sorted({f"{name} {reason}" for name, reason in adjusted})),
        extra={"tenant_id": tenant_id},
    )


def needs_lookup(company: IngestCompany, known: Contact) -> bool:
    """Whether `complete_contact` would ask Shopmonkey (else `known` is the answer)."""
    return (
        normalise.contact_lacks(known)
        and bool(known["customer_id"])
        and company.can_call_shopmonkey
    )


async def resolve_contact(
    company: IngestCompany,
    table: str,
    data: dict[str, Any],
    customers: CustomerSource,
    adjusted: normalise.Adjusted | None = None,
) -> Contact:
    """The record's customer, completed from `GET /v3/customer/:id` when email or phone is
    missing. A customer change is always re-read (`fresh`). ShopmonkeyUnavailable propagates
    (the caller answers 503 / retries); a refused key only costs the enrichment. (The webhook
    path inlines this: no coroutine when no look-up is needed.)"""
    known = known_contact(table, data, adjusted)
    if needs_lookup(company, known):
        known = await complete_contact(company, table, known, customers, adjusted)
    return known


async def complete_contact(
    company: IngestCompany,
    table: str,
    known: Contact,
    customers: CustomerSource,
    adjusted: normalise.Adjusted | None = None,
) -> Contact:
    """`known` completed from Shopmonkey's customer record (see `resolve_contact`)."""
    customer_id = known["customer_id"]
    assert customer_id is not None
    try:
        record = await customers.customer(company, customer_id, fresh=table == "customer")
    except ShopmonkeyRejected as exc:
        log.warning("customer of %s not enriched: %s (company %s)", table, exc, company.id)
        return known
    if record is None:
        return known
    return normalise.merge_contact(known, normalise.contact_of_record(record, adjusted))


def build_draft(
    tenant: IngestTenant,
    table: str,
    data: dict[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    contact: Contact,
    now: datetime,
    ids: LeadIdKey,
    facts: normalise.Facts | None = None,
    adjusted: normalise.Adjusted | None = None,
    fetched_services: list[dict[str, Any]] | None = None,
) -> OrderEventDraft:
    """The record's event as a draft (published as is, see `draft.py`); an order's (and an
    appointment's, by its order) lead id is derived under `ids`. `facts`: the record's
    `normalise.facts_of`, when the caller already has them; `adjusted` collects what was cut
    or dropped; `fetched_services`: an order's services read from Shopmonkey."""
    fields: dict[str, Any] = {
        "operation": operation,
        "source": source,
        "contact": contact,
        "now": now,
        "facts": facts,
        "adjusted": adjusted,
    }
    if table == "order":
        return normalise.order_draft(
            tenant.id, data, ids=ids, fetched_services=fetched_services, **fields
        )
    if table == "appointment":
        return normalise.appointment_draft(tenant.id, data, ids=ids, **fields)
    return normalise.customer_draft(tenant.id, data, **fields)


def build_drafts(
    targets: tuple[IngestTenant, ...],
    table: str,
    data: dict[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    contact: Contact,
    now: datetime,
    ids: LeadIdKey,
    facts: normalise.Facts,
    adjusted: normalise.Adjusted,
    fetched_services: list[dict[str, Any]] | None = None,
) -> list[OrderEventDraft]:
    """The record's event for each of its tenants (`targets`, see `domain.routing`); what
    the normaliser cut or dropped is noted once (the first draft collects it)."""
    drafts = [
        build_draft(
            tenant,
            table,
            data,
            operation=operation,
            source=source,
            contact=contact,
            now=now,
            ids=ids,
            facts=facts,
            adjusted=adjusted if i == 0 else None,
            fetched_services=fetched_services,
        )
        for i, tenant in enumerate(targets)
    ]
    if adjusted and drafts:
        note_adjusted(adjusted, source=source, event_id=facts.event_id, tenant_id=targets[0].id)
    return drafts


async def told_elsewhere(
    company: IngestCompany,
    drafts: list[OrderEventDraft],
    locations: CustomerLocations | None,
    *,
    tell: bool = True,
    consent: Sequence[ConsentRecord] = (),
) -> list[OrderEventDraft]:
    """`drafts`, and when they are a new order of a known customer or an order reviving
    declined work, that order told to the company's other locations where the customer has had
    orders (`OrderEventDraft.elsewhere`, one event each): a Shopmonkey customer is the
    company's, so the declined work their earlier orders there left stops when they come back
    here. Other changes of an order concern its own location only.

    Every order of a known customer is a visit of `locations` (committed before the webhook is
    answered, or before a poll or backfill publishes the order; once a process for a location
    it already recorded, unless it is news to tell): that is how a later order elsewhere finds
    this location. A location the customer never had an
    order at has no lead of theirs to tell, and is not told (one record a location was the
    cost of a webhook at a company of many: bench/ingest/README.md). `locations` None (no
    database: tests, tools): every other location is told. `tell` False (a backfill of one
    location, whose history is that location's own): recorded, nobody told. `consent`: the
    order's consent records, committed with the visit; only where `asks_locations` (else this
    raises, having committed nothing)."""
    found = _customer_order(company, drafts, tell=tell)
    asked = _asks(company, found, locations)
    if consent and not asked:
        raise RuntimeError("told_elsewhere: consent to commit with a visit, but no visit is asked")
    if found is None:
        return drafts
    draft, customer_id, news = found
    visited: frozenset[uuid.UUID] | None = None
    if asked and locations is not None:
        visited = await locations.visit(company.id, customer_id, draft.tenant_id, consent=consent)
    if not news:
        return drafts
    return drafts + [
        draft.elsewhere(t.id)
        for t in company.tenants
        if t.id != draft.tenant_id and (visited is None or t.id in visited)
    ]


def asks_locations(
    company: IngestCompany, drafts: list[OrderEventDraft], locations: CustomerLocations | None
) -> bool:
    """Whether `told_elsewhere` would wait for `locations` (else it returns at once)."""
    return _asks(company, _customer_order(company, drafts, tell=True), locations)


def _asks(
    company: IngestCompany,
    found: tuple[OrderEventDraft, str, bool] | None,
    locations: CustomerLocations | None,
) -> bool:
    """Whether the customer order `found` (`_customer_order`) is a visit to record: news, or
    a location this process has not recorded yet."""
    if found is None or locations is None:
        return False
    draft, customer_id, news = found
    return news or not locations.known(company.id, customer_id, draft.tenant_id)


def _customer_order(
    company: IngestCompany, drafts: list[OrderEventDraft], *, tell: bool
) -> tuple[OrderEventDraft, str, bool] | None:
    """The order event of a known customer among `drafts`, its customer, and whether it is
    news for the company's other locations; None when `drafts` are no such event."""
    if len(drafts) != 1 or drafts[0].entity != "order":
        return None
    draft = drafts[0]
    order = draft.fields["order"]
    customer_id: str | None = draft.fields["customer"]["customer_id"]
    if not customer_id or order is None:
        return None
    news = (
        tell
        and len(company.tenants) > 1
        and (
            draft.fields["operation"] == Operation.INSERT
            or any(line["revived_from"] for line in order["service_lines"])
        )
    )
    return draft, customer_id, news


async def polled_drafts(
    company: IngestCompany,
    table: str,
    data: dict[str, Any],
    customers: CustomerSource,
    *,
    targets: tuple[IngestTenant, ...],
    source: OrderSource,
    now: datetime,
    gate: asyncio.Semaphore,
    ids: LeadIdKey,
    seen: SeenEvents | None = None,
    consents: ConsentStore | None = None,
    services: OrderServices | None = None,
) -> list[OrderEventDraft]:
    """A record read from the REST API (poller, backfill) as the event of each of `targets`;
    none when its `event_id` is in `seen`, or when it is an appointment of no lead
    (`normalise.appointment_unusable`). The customer look-up and, for an invoiced or paid order
    that embeds no services, the read of its services from `services` (`wants_services`) wait
    for `gate`; the consent the record carries is kept in `consents` first.
    Raises InvalidPayload for a record we refuse (an id over its bound)."""
    operation = normalise.polled_operation(data)
    facts = normalise.facts_of(table, data, operation)
    enrich = services is not None and table == "order" and wants_services(data, operation)
    if enrich:
        # The webhook of the same change carried no services (Shopmonkey nests none in an
        # order): under the change's own id this read, which adds them, would be a duplicate
        # of it and dropped, and declined work would never be seen. An event of its own.
        facts = facts._replace(event_id=f"{facts.event_id}{SERVICES_EVENT}"[: bounds.EVENT_ID])
    if seen is not None and facts.event_id in seen:
        return []
    if table == "appointment" and (why := normalise.appointment_unusable(data, operation)):
        log.debug("appointment %s of company %s skipped: %s", facts.rid, company.id, why)
        return []
    await keep_consent(consents, company, table, data, event_key=facts.event_id, now=now)
    adjusted: normalise.Adjusted = []
    fetched: list[dict[str, Any]] | None = None
    async with gate:
        contact = await resolve_contact(company, table, data, customers, adjusted)
        if enrich and services is not None:
            fetched = await order_services(company, facts.rid, services)
    return build_drafts(
        targets,
        table,
        data,
        operation=operation,
        source=source,
        contact=contact,
        now=now,
        ids=ids,
        facts=facts,
        adjusted=adjusted,
        fetched_services=fetched,
    )


#: Suffix of the event id of a polled order whose services were read (`polled_drafts`).
SERVICES_EVENT = ":services"


def wants_services(data: dict[str, Any], operation: Operation) -> bool:
    """Whether a polled order's services are worth a Shopmonkey read: it embeds none, and it
    is invoiced or paid (when declined work matters: campaigns), and not deleted."""
    return (
        not isinstance(data.get("services"), list)
        and (data.get("invoiced") is True or data.get("paid") is True)
        and operation is not Operation.DELETE
    )


async def order_services(
    company: IngestCompany, order_id: str, services: OrderServices
) -> list[dict[str, Any]] | None:
    """The order's services; a refused read (a key without that right) only costs the lines
    (logged), ShopmonkeyUnavailable propagates (the poll or backfill is retried)."""
    try:
        return await services.services(company, order_id)
    except ShopmonkeyRejected as exc:
        log.warning("services of order %s not read: %s (company %s)", order_id, exc, company.id)
        return None


def unrouted(company: IngestCompany, table: str, why: Unrouted, *, source: OrderSource) -> None:
    """Count (and log) a record of `company` attributed to no tenant."""
    UNROUTED.labels(source.value, why.code).inc()
    log.info("%s of company %s ignored (%s): %s", table, company.id, source.value, why)


def refused(source: OrderSource, table: str, exc: InvalidPayload, company: IngestCompany) -> None:
    """A polled or backfilled record we refuse (what a webhook answers 400): counted, logged,
    and the read goes on without it, so one record never stops a company's poll."""
    child(RECORDS_REFUSED, source.value).inc()
    log.warning("%s record of company %s refused: %s", table, company.id, exc.reason)


def demo_admits(
    event: OrderEvent | OrderEventDraft, *, demo_mode: bool, whitelist: frozenset[str]
) -> bool:
    """DEMO_MODE check with its metric and a masked log line."""
    email = event.customer_email if isinstance(event, OrderEventDraft) else event.customer.email
    if admits_email(email, demo_mode=demo_mode, whitelist=whitelist):
        return True
    DEMO_DROPPED.labels(event.source.value).inc()
    log.info(
        "DEMO_MODE: dropped %s %s of customer %s (email not whitelisted)",
        event.entity,
        event.event_id,
        mask_email(email),
        extra={"tenant_id": event.tenant_id},
    )
    return False
