"""The ingest service's ports: what the service layer needs from the outside world."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any, Protocol

from schemas.base import Channel
from schemas.events import ContactSignal, OrderEvent
from services.common.domain.consent import ConsentRecord
from services.common.domain.operators import Operator
from services.common.kafka.lead_scan import KafkaScan
from services.ingest.domain.dashboard import LagReport, ReadModelCounts
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.model import (
    BackfillPosition,
    ConsentChange,
    ConsentResult,
    IngestCompany,
    IngestTenant,
    Page,
    TouchRow,
)
from services.ingest.domain.webhook_stats import WebhookStats


class TenantDirectory(Protocol):
    """Active Shopmonkey companies with their active locations (tenants)."""

    async def company(self, company_id: str) -> IngestCompany | None:
        """An active company by its Shopmonkey id (None: unknown or inactive)."""
        ...

    async def company_of(self, tenant_id: uuid.UUID) -> IngestCompany | None:
        """The active company of an active tenant (None: unknown or inactive)."""
        ...

    async def company_anew(self, company_id: str) -> IngestCompany | None:
        """The company as a directory read after this call began holds it: its locations
        include one added a moment ago (None: unknown, inactive, or the directory cannot be
        read now). May wait for a read shared with other callers; cheap to call often."""
        ...

    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        """An active tenant by id (None: unknown or inactive)."""
        ...

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        """The active tenant owning this website API key."""
        ...

    async def pollable(self) -> list[IngestCompany]:
        """Active companies with a Shopmonkey API key and at least one active tenant."""
        ...


class EventPublisher(Protocol):
    async def publish(self, event: OrderEvent | OrderEventDraft) -> None:
        """Return once Kafka acknowledged `event.to_bytes()`; raise `PublishUnavailable`
        otherwise."""
        ...


class CustomerSource(Protocol):
    async def customer(
        self, company: IngestCompany, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        """The company's Shopmonkey customer record (None: not found, or the company has no
        API key); raises ShopmonkeyUnavailable."""
        ...


class OrderServices(Protocol):
    async def services(self, company: IngestCompany, order_id: str) -> list[dict[str, Any]] | None:
        """The services of the company's order (`GET /v3/order/:id/service`; None: no such
        order, or the company has no API key); raises ShopmonkeyUnavailable/Rejected."""
        ...


class ConsentStore(Protocol):
    async def record(self, company_id: str, records: Sequence[ConsentRecord]) -> None:
        """Keep each record unless the one stored for its contact is newer (committed before
        this returns: the outbound gate reads it on the next touch); raises Unavailable."""
        ...


class CustomerLocations(Protocol):
    """Where each company's customers have had orders (the locations to tell of a new one)."""

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        """Whether this process already recorded that visit (no need to record it again)."""
        ...

    async def visit(
        self,
        company_id: str,
        customer_id: str,
        tenant_id: uuid.UUID,
        *,
        consent: Sequence[ConsentRecord] = (),
    ) -> frozenset[uuid.UUID]:
        """Record that the customer has an order at `tenant_id`, committed before this returns,
        and return every location where they have had one (this one too). Two visits of one
        customer at once are serialised: the later one's answer holds the earlier one's
        location. `consent`: records kept as `ConsentStore.record` keeps them, in the same
        commit (the order's own, so one round trip commits both). Raises Unavailable."""
        ...


class RecordSource(Protocol):
    async def list_records(
        self,
        api_key: str,
        table: str,
        *,
        where: dict[str, Any] | None,
        orderby: dict[str, str] | None,
        orderby_param: str,
        limit: int,
        skip: int,
    ) -> Page:
        """One page of `GET /v3/<table>`; raises ShopmonkeyUnavailable/Rejected."""
        ...


class PollCursors(Protocol):
    """How far the poller has read each Shopmonkey company's table (`kind`: poll,
    poll_customer)."""

    async def load(self, company_id: str, kind: str) -> datetime | None: ...

    async def advance(self, company_id: str, kind: str, cursor_at: datetime | None) -> None:
        """Record a successful poll (and the new cursor when it moved)."""
        ...

    async def record_error(self, company_id: str, kind: str, error: str) -> None: ...


class BackfillCursors(Protocol):
    """Where each backfill (a tenant and the `since` it started from) stands."""

    async def load(self, tenant_id: uuid.UUID, since: datetime) -> BackfillPosition | None: ...

    async def start(
        self, tenant_id: uuid.UUID, since: datetime, *, restart: bool
    ) -> BackfillPosition:
        """The position to go on from (a new one, or the old one reset when `restart`)."""
        ...

    async def advance(
        self, tenant_id: uuid.UUID, since: datetime, position: BackfillPosition, *, done: bool
    ) -> None: ...


# provider signals -------------------------------------------------------------------------------
class SignalUnit(Protocol):
    """One transaction of a provider webhook (see `SignalStore.unit`)."""

    async def claim(
        self, provider: str, keys: Sequence[str], tenant_id: uuid.UUID | None = None
    ) -> set[str]:
        """Record event keys as processed; returns those not seen before."""
        ...

    async def delivery_by_command(
        self,
        command_id: uuid.UUID,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None: ...

    async def delivery_by_message(
        self,
        message_id: str,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None: ...

    async def leads_for_contact(
        self, channel: Channel, contact: str
    ) -> list[tuple[uuid.UUID, uuid.UUID]]: ...


class SignalStore(Protocol):
    """Suppressions and consents (each committed at once, on its own) and the units of the
    webhooks."""

    async def suppress(
        self,
        *,
        channel: Channel,
        contact: str,
        reason: str,
        source: str,
        tenant_id: uuid.UUID | None = None,
        claim: tuple[str, str] | None = None,
    ) -> bool:
        """Record a suppression at `tenant_id` (the outbound gate applies it to every location
        of that tenant's company) or, None, at every location. `claim` (provider, event key):
        claimed first, in the same transaction; a claimed event changes nothing. True when
        the row is new."""
        ...

    async def consent(self, change: ConsentChange) -> ConsentResult:
        """Claim the change's provider event, then record it unless an older one than the
        recorded change, then add or lift the suppressions: one transaction."""
        ...

    async def lead_contacts(
        self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID, channel: Channel
    ) -> list[str]:
        """Every email/phone the lead had: the read model's and its touch points' recipients."""
        ...

    def unit(self) -> AbstractAsyncContextManager[SignalUnit]:
        """A transaction that commits when the block ends without an error."""
        ...


class SignalPublisher(Protocol):
    async def publish(self, signals: Sequence[ContactSignal]) -> None:
        """Return once Kafka acknowledged every signal; raise `PublishUnavailable` otherwise."""
        ...


class LeadReader(Protocol):
    """The lead API's reads: a bearer token's tenant and a lead's view (JSON text)."""

    async def tenant_for_token(self, token: str) -> uuid.UUID | None: ...

    async def lead_view(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> str | None: ...

    async def lead_exists(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> bool: ...


# dashboard --------------------------------------------------------------------------------------
class DashboardReads(Protocol):
    async def counts(
        self, *, tenants: frozenset[uuid.UUID] | None, since: datetime, bucket_seconds: int
    ) -> ReadModelCounts:
        """Leads and touch points of these locations (None: all) since `since`, per time
        bucket, and the names of the locations asked for; raises `ReadModelUnavailable` when
        PostgreSQL does not answer."""
        ...

    async def tenant_names(self, *, max_age: float) -> dict[uuid.UUID, str]:
        """Every location's name by id, read at most `max_age` seconds ago; raises
        `ReadModelUnavailable`."""
        ...


class ConsumerLag(Protocol):
    async def report(self) -> LagReport:
        """The latest consumer-lag reading (a failure is in its `error`, never raised)."""
        ...


class WebhookMeter(Protocol):
    """The webhook instruments of this process."""

    @property
    def request_metric(self) -> str: ...

    def snapshot(self) -> WebhookStats: ...


# operators (admin listener) ---------------------------------------------------------------------
class OperatorStore(Protocol):
    async def by_email(self, email: str) -> Operator | None: ...

    async def by_id(self, operator_id: uuid.UUID) -> Operator | None:
        """The account (cached a few seconds: a disabled one ends within that)."""
        ...

    async def signed_in(self, operator_id: uuid.UUID) -> None: ...


class CredentialCheck(Protocol):
    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        """Whether `secret` matches (slow on purpose; as slow for no hash at all)."""
        ...


class LeadDirectory(Protocol):
    """The read model's leads, for the dashboard's search and lead page."""

    async def search(
        self, *, tenants: frozenset[uuid.UUID] | None, query: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        """Leads of these locations (None: all) matching `query` (a prefix, any case, of a
        name, email, order number or lead id, or digits of a phone), newest change first;
        raises `ReadModelUnavailable`."""
        ...

    async def lead(self, lead_id: uuid.UUID) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The lead's row (with its location's name) or None, and its touch points."""
        ...


class LeadTimeline(Protocol):
    async def scan(self, *, lead_id: uuid.UUID, tenant_id: uuid.UUID) -> KafkaScan:
        """The lead's records in Kafka (its tenant's partition of each lead topic)."""
        ...
