"""The ingest service's ports: what the service layer needs from the outside world."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Protocol

from schemas.events import OrderEvent
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.domain.model import IngestTenant, Page


class TenantDirectory(Protocol):
    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        """An active tenant by id (None: unknown or inactive)."""
        ...

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        """The active tenant owning this website API key."""
        ...

    async def pollable(self) -> list[IngestTenant]:
        """Active tenants with their own Shopmonkey API key."""
        ...


class EventPublisher(Protocol):
    async def publish(self, event: OrderEvent | OrderEventDraft) -> None:
        """Return once Kafka acknowledged `event.to_bytes()`; raise `PublishUnavailable`
        otherwise."""
        ...


class CustomerSource(Protocol):
    async def customer(
        self, tenant: IngestTenant, customer_id: str, *, fresh: bool = False
    ) -> dict[str, Any] | None:
        """The Shopmonkey customer record (None: not found); raises ShopmonkeyUnavailable."""
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


class CursorStore(Protocol):
    async def load(self, tenant_id: uuid.UUID, kind: str) -> datetime | None: ...

    async def advance(self, tenant_id: uuid.UUID, kind: str, cursor_at: datetime | None) -> None:
        """Record a successful poll (and the new cursor when it moved)."""
        ...

    async def record_error(self, tenant_id: uuid.UUID, kind: str, error: str) -> None: ...
