"""One Shopmonkey webhook delivery: verify the raw body, parse, normalise, produce, answer.

Order of checks: signature (401) on the raw bytes before anything is parsed, then content
type (415), JSON and envelope (400). Tables other than order/customer are acknowledged and
ignored (202). The answer is `Accepted` only after Kafka acknowledged the record.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from schemas.events import OrderSource
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import DROP_REASON
from services.ingest.domain.envelope import INGESTED_TABLES, parse_envelope
from services.ingest.domain.model import IngestTenant
from services.ingest.domain.shopmonkey_signatures import verify
from services.ingest.errors import InvalidPayload, UnsupportedMediaType
from services.ingest.ports import CustomerSource, EventPublisher
from services.ingest.service_layer.order_events import (
    build_draft,
    complete_contact,
    demo_admits,
    known_contact,
    needs_lookup,
    note_adjusted,
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


class WebhookIngest:
    def __init__(
        self,
        *,
        customers: CustomerSource,
        publisher: EventPublisher,
        config: WebhookConfig,
        seen_events: SeenEvents,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._customers = customers
        self._publisher = publisher
        self._config = config
        self._seen_events = seen_events
        self._clock = clock

    async def handle(
        self,
        tenant: IngestTenant,
        headers: Mapping[str, str],
        body: bytes,
        content_type: str,
    ) -> Accepted | Ignored:
        now = self._clock()
        verify(tenant.webhook_keys, headers, body, now=now, tolerance=self._config.tolerance)
        require_json(content_type)
        envelope = parse_envelope(load_json(body))
        if envelope.table not in INGESTED_TABLES:
            return Ignored(f"table '{envelope.table}' is not ingested")
        facts = normalise.facts_of(
            envelope.table, envelope.data, envelope.operation, rid=envelope.rid
        )
        event_id = facts.event_id
        # the awaits below only when needed: most deliveries need neither (no suspension)
        begun = self._seen_events.try_begin(event_id)
        seen, lead_id = await self._seen_events.begin(event_id) if begun is None else begun
        if seen:
            return Accepted(event_id, lead_id, duplicate=True)
        try:
            adjusted: normalise.Adjusted = []
            contact = known_contact(envelope.table, envelope.data, adjusted)
            if needs_lookup(tenant, contact):
                contact = await complete_contact(
                    tenant, envelope.table, contact, self._customers, adjusted
                )
            event = build_draft(
                tenant,
                envelope.table,
                envelope.data,
                operation=envelope.operation,
                source=OrderSource.WEBHOOK,
                contact=contact,
                now=datetime.fromtimestamp(now, UTC),
                facts=facts,
                adjusted=adjusted,
            )
            if adjusted:
                note_adjusted(
                    adjusted, source=OrderSource.WEBHOOK, event_id=event_id, tenant_id=tenant.id
                )
            if not demo_admits(
                event, demo_mode=self._config.demo_mode, whitelist=self._config.whitelist
            ):
                return Ignored(DROP_REASON, outcome="demo_dropped")
            await self._publisher.publish(event)
            lead_id = event.lead_id
            self._seen_events.add(event_id, lead_id)
        finally:
            self._seen_events.end(event_id)
        log.debug("ingested %s", event_id, extra={"tenant_id": tenant.id, "lead_id": lead_id})
        return Accepted(event_id, lead_id)
