"""Build an OrderEvent from a Shopmonkey record, fetching the customer's contact details when
the record lacks them; the webhook path and the poller share it, so both give equal events."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from schemas.events import Customer, Operation, OrderEvent, OrderSource
from services.common.masking import mask_email
from services.ingest.adapters.metrics import DEMO_DROPPED
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import admits
from services.ingest.domain.model import IngestTenant
from services.ingest.errors import ShopmonkeyRejected
from services.ingest.ports import CustomerSource

log = logging.getLogger(__name__)


def known_customer(table: str, data: dict[str, Any]) -> Customer:
    """What the record says about its customer."""
    if table == "customer":
        return normalise.customer_from_record(data)
    return normalise.customer_of_order(data)


def needs_lookup(tenant: IngestTenant, known: Customer) -> bool:
    """Whether `complete_customer` would ask Shopmonkey (else `known` is the answer)."""
    return normalise.lacks_contact(known) and bool(known.customer_id) and tenant.can_call_shopmonkey


async def resolve_customer(
    tenant: IngestTenant, table: str, data: dict[str, Any], customers: CustomerSource
) -> Customer:
    """The record's customer, completed from `GET /v3/customer/:id` when email or phone is
    missing. A customer change is always re-read (`fresh`). ShopmonkeyUnavailable propagates
    (the caller answers 503 / retries); a refused key only costs the enrichment."""
    known = known_customer(table, data)
    if not needs_lookup(tenant, known):
        return known
    return await complete_customer(tenant, table, known, customers)


async def complete_customer(
    tenant: IngestTenant, table: str, known: Customer, customers: CustomerSource
) -> Customer:
    """`known` completed from Shopmonkey's customer record (see `resolve_customer`)."""
    assert known.customer_id is not None
    try:
        record = await customers.customer(tenant, known.customer_id, fresh=table == "customer")
    except ShopmonkeyRejected as exc:
        log.warning("customer of %s not enriched: %s", table, exc, extra={"tenant_id": tenant.id})
        return known
    if record is None:
        return known
    return normalise.merge_customer(known, normalise.customer_from_record(record))


def build_event(
    tenant: IngestTenant,
    table: str,
    data: dict[str, Any],
    *,
    operation: Operation,
    source: OrderSource,
    customer: Customer,
    now: datetime,
    facts: normalise.Facts | None = None,
) -> OrderEvent:
    """`facts`: the record's `normalise.facts_of`, when the caller already has them."""
    build = normalise.order_event if table == "order" else normalise.customer_event
    return build(
        tenant.id, data, operation=operation, source=source, customer=customer, now=now, facts=facts
    )


def demo_admits(event: OrderEvent, *, demo_mode: bool, whitelist: frozenset[str]) -> bool:
    """DEMO_MODE check with its metric and a masked log line."""
    if admits(event.customer, demo_mode=demo_mode, whitelist=whitelist):
        return True
    DEMO_DROPPED.labels(event.source.value).inc()
    log.info(
        "DEMO_MODE: dropped %s %s of customer %s (email not whitelisted)",
        event.entity,
        event.event_id,
        mask_email(event.customer.email),
        extra={"tenant_id": event.tenant_id},
    )
    return False
