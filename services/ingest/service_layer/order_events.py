"""Build an OrderEvent draft from a Shopmonkey record, fetching the customer's contact details
(with its company's key) when the record lacks them; the webhook path, the poller and the
backfill share it, so all three give equal events. Which tenant a record belongs to is
`domain.routing`'s answer; `unrouted` counts and logs a record that belongs to none."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from schemas.base import LeadIdKey
from schemas.events import Operation, OrderEvent, OrderSource
from services.common.masking import mask_email
from services.ingest.adapters.metrics import DEMO_DROPPED, UNROUTED
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import admits_email
from services.ingest.domain.draft import Contact, OrderEventDraft
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.routing import Unrouted
from services.ingest.errors import ShopmonkeyRejected
from services.ingest.ports import CustomerSource
from services.ingest.service_layer.seen_events import SeenEvents

log = logging.getLogger(__name__)


def known_contact(table: str, data: dict[str, Any]) -> Contact:
    """What the record says about its customer."""
    if table == "customer":
        return normalise.contact_of_record(data)
    return normalise.contact_of_order(data)


def needs_lookup(company: IngestCompany, known: Contact) -> bool:
    """Whether `complete_contact` would ask Shopmonkey (else `known` is the answer)."""
    return (
        normalise.contact_lacks(known)
        and bool(known["customer_id"])
        and company.can_call_shopmonkey
    )


async def resolve_contact(
    company: IngestCompany, table: str, data: dict[str, Any], customers: CustomerSource
) -> Contact:
    """The record's customer, completed from `GET /v3/customer/:id` when email or phone is
    missing. A customer change is always re-read (`fresh`). ShopmonkeyUnavailable propagates
    (the caller answers 503 / retries); a refused key only costs the enrichment. (The webhook
    path inlines this: no coroutine when no look-up is needed.)"""
    known = known_contact(table, data)
    if needs_lookup(company, known):
        known = await complete_contact(company, table, known, customers)
    return known


async def complete_contact(
    company: IngestCompany, table: str, known: Contact, customers: CustomerSource
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
    return normalise.merge_contact(known, normalise.contact_of_record(record))


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
) -> OrderEventDraft:
    """The record's event as a draft (published as is, see `draft.py`); an order's lead id is
    derived under `ids`. `facts`: the record's `normalise.facts_of`, when the caller already
    has them."""
    fields: dict[str, Any] = {
        "operation": operation,
        "source": source,
        "contact": contact,
        "now": now,
        "facts": facts,
    }
    if table == "order":
        return normalise.order_draft(tenant.id, data, ids=ids, **fields)
    return normalise.customer_draft(tenant.id, data, **fields)


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
) -> list[OrderEventDraft]:
    """A record read from the REST API (poller, backfill) as the event of each of `targets`
    (its tenants, see `domain.routing`); none when its `event_id` is in `seen`. The customer
    look-up, if any, waits for `gate`."""
    operation = normalise.polled_operation(data)
    facts = normalise.facts_of(table, data, operation)
    if seen is not None and facts.event_id in seen:
        return []
    async with gate:
        contact = await resolve_contact(company, table, data, customers)
    return [
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
        )
        for tenant in targets
    ]


def unrouted(company: IngestCompany, table: str, why: Unrouted, *, source: OrderSource) -> None:
    """Count (and log) a record of `company` attributed to no tenant."""
    UNROUTED.labels(source.value, why.code).inc()
    log.info("%s of company %s ignored (%s): %s", table, company.id, source.value, why)


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
