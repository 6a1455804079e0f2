"""Keep the consent a Shopmonkey record carries, before its event goes on.

Why PostgreSQL and not the event stream: the outbound gate reads `source_consent` at decision
time, and ingest commits a consent change there before it answers the webhook (or before the
poll or backfill publishes the record), so a customer UPDATE that withdraws consent applies to
the very next touch, whatever the sequencer has or has not consumed yet. Carrying consent on
the lead's events instead would leave a window: a command already issued, or the outbound
consumer ahead of the sequencer on another partition, would not see it.

Records come from customer records (webhooks, poller) and from every customer record ingest
fetches to complete an order (`RecordingCustomers`, which is how the backfill, reading orders
only, gets them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.common.domain.consent import ConsentRecord
from services.ingest.domain.consent import consent_of_customer, consent_of_order
from services.ingest.domain.model import IngestCompany
from services.ingest.domain.normalise import facts_of, polled_operation
from services.ingest.ports import ConsentStore, CustomerSource


def consent_records(
    table: str, data: dict[str, Any], *, event_key: str, now: datetime
) -> list[ConsentRecord]:
    """The consent of a customer record, or of an order's embedded customer."""
    if table == "customer":
        return consent_of_customer(data, event_key=event_key, now=now)
    return consent_of_order(data, event_key=event_key, now=now)


async def keep_consent(
    store: ConsentStore | None,
    company: IngestCompany,
    table: str,
    data: dict[str, Any],
    *,
    event_key: str,
    now: datetime,
) -> None:
    """Record the consent of a customer record, or of an order's embedded customer."""
    if store is None:
        return
    records = consent_records(table, data, event_key=event_key, now=now)
    if records:
        await store.record(company.id, records)


class RecordingCustomers:
    """A `CustomerSource` that keeps the consent of every customer record it hands out."""

    def __init__(self, inner: CustomerSource, store: ConsentStore, clock: Any) -> None:
        self._inner = inner
        self._store = store
        self._clock = clock

    async def customer(
        self, company: IngestCompany, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        record = await self._inner.customer(company, customer_id, fresh=fresh)
        if record is not None:
            key = facts_of("customer", record, polled_operation(record), rid=customer_id).event_id
            await keep_consent(
                self._store, company, "customer", record, event_key=key, now=self._clock()
            )
        return record
