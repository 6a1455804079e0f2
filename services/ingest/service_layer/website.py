"""Website lead forms (`POST /api/leads`): a tenant-scoped API key, then the same topic as the
Shopmonkey orders with source `website`; idempotent on the client's submission id. The form's
explicit consent answers are committed to PostgreSQL (with the consent text's version and time)
before the event is published."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemas.base import utcnow
from schemas.events import OrderSource
from services.ingest.domain.bearer import bearer_token
from services.ingest.domain.demo_mode import DROP_REASON
from services.ingest.domain.normalise import Adjusted
from services.ingest.domain.website_form import WebsiteLeadForm, form_consent, website_event
from services.ingest.errors import Unauthorized
from services.ingest.ports import ConsentStore, EventPublisher, TenantDirectory
from services.ingest.service_layer.order_events import demo_admits, note_adjusted
from services.ingest.service_layer.seen_events import SeenEvents
from services.ingest.service_layer.webhooks import (
    Accepted,
    Ignored,
    WebhookConfig,
    load_json,
    require_json,
)


def website_key(authorization: str | None) -> str:
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized("missing or malformed 'Authorization: Bearer <website API key>'")
    return token


class WebsiteLeads:
    def __init__(
        self,
        *,
        tenants: TenantDirectory,
        publisher: EventPublisher,
        config: WebhookConfig,
        seen_events: SeenEvents,
        consents: ConsentStore | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._consents = consents
        self._tenants = tenants
        self._publisher = publisher
        self._config = config
        self._seen_events = seen_events
        self._clock = clock

    async def handle(
        self, authorization: str | None, body: bytes, content_type: str
    ) -> Accepted | Ignored:
        tenant = await self._tenants.for_api_key(website_key(authorization))
        if tenant is None:
            raise Unauthorized("unknown website API key")
        require_json(content_type)
        form = WebsiteLeadForm.parse(load_json(body))
        adjusted: Adjusted = []
        now = self._clock()
        event = website_event(
            tenant.id, form, now=now, ids=self._config.lead_ids, adjusted=adjusted
        )
        if adjusted:
            note_adjusted(
                adjusted, source=OrderSource.WEBSITE, event_id=event.event_id, tenant_id=tenant.id
            )
        if not demo_admits(
            event, demo_mode=self._config.demo_mode, whitelist=self._config.whitelist
        ):
            return Ignored(DROP_REASON, outcome="demo_dropped")
        seen, lead_id = await self._seen_events.begin(event.event_id)
        if seen:
            return Accepted(event.event_id, lead_id, duplicate=True)
        try:
            records = form_consent(form, event_key=event.event_id, now=now)
            if records and self._consents is not None:  # committed before Kafka and the answer
                await self._consents.record(tenant.company_id, records)
            await self._publisher.publish(event)
            self._seen_events.add(event.event_id, event.lead_id)
        finally:
            self._seen_events.end(event.event_id)
        return Accepted(event.event_id, event.lead_id)
