"""Values the ingest service works with (no I/O)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from schemas.base import Channel
from services.ingest.domain.shopmonkey_signatures import WebhookKeys


@dataclass(frozen=True, slots=True)
class IngestTenant:
    """A location as ingest needs it: how to verify its webhooks and how to call its account.

    Secrets never appear in `repr`.
    """

    id: uuid.UUID
    name: str
    active: bool
    webhook_keys: WebhookKeys = field(repr=False)
    shopmonkey_api_key: str | None = field(default=None, repr=False)

    @property
    def can_call_shopmonkey(self) -> bool:
        return bool(self.shopmonkey_api_key)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a Shopmonkey list endpoint: `{success, data, meta: {total, hasMore}}`."""

    data: list[dict[str, Any]]
    total: int | None
    has_more: bool | None


@dataclass
class BackfillPosition:
    """How far a backfill of one tenant's orders created since a time has come: orders at or
    after `at` (`createdDate`), the first `skip` of them done; `status` running or done."""

    at: datetime
    skip: int
    produced: int
    pages: int
    status: str


@dataclass(frozen=True, slots=True)
class TouchRow:
    """The touch point (job_executions row) a provider message belongs to."""

    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    command_id: uuid.UUID
    channel: Channel
    recipient: str | None
