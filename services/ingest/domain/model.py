"""Values the ingest service works with (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from schemas.base import Channel
from services.ingest.domain.shopmonkey_signatures import WebhookKeys


@dataclass(frozen=True, slots=True)
class IngestTenant:
    """A location as ingest needs it: its id and which Shopmonkey company and location it is."""

    id: uuid.UUID
    name: str
    active: bool
    company_id: str
    location_id: str


@dataclass(frozen=True, slots=True)
class IngestCompany:
    """A Shopmonkey company as ingest needs it: how to verify its webhooks, how to call its
    account, and its active locations by Shopmonkey location id and by tenant id (routing is a
    dict look-up). Secrets never appear in `repr`."""

    id: str
    name: str
    webhook_keys: WebhookKeys = field(repr=False)
    shopmonkey_api_key: str | None = field(default=None, repr=False)
    tenants: tuple[IngestTenant, ...] = ()
    by_location: Mapping[str, IngestTenant] = field(init=False, repr=False, compare=False)
    by_id: Mapping[uuid.UUID, IngestTenant] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_location", {t.location_id: t for t in self.tenants})
        object.__setattr__(self, "by_id", {t.id: t for t in self.tenants})

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


@dataclass(frozen=True, slots=True)
class ConsentChange:
    """A customer's opt-out or opt-in on a channel, as a provider event told it.

    `tenant_id` None: every location (an SMS STOP to the shared sender). `at`: when it
    happened; an older change than the one recorded for the contact changes nothing. The
    provider event (`provider`, `event_key`) is claimed in the same transaction, so a replayed
    webhook changes nothing either. An opt-out adds the suppression `reason`; an opt-in removes
    every suppression of the contact whose reason is in `lifts`."""

    channel: Channel
    contact: str
    opted_out: bool
    at: datetime
    provider: str
    event_key: str
    source: str
    tenant_id: uuid.UUID | None = None
    reason: str = "sms_stop"
    lifts: tuple[str, ...] = ()


class Consent(StrEnum):
    """What recording a ConsentChange did."""

    APPLIED = "applied"  # recorded; the suppressions changed accordingly
    DUPLICATE = "duplicate"  # recorded before (still the latest): nothing changed now
    STALE = "stale"  # older than the change recorded for the contact: nothing changed


@dataclass(frozen=True, slots=True)
class ConsentResult:
    consent: Consent
    suppressions_changed: int = 0
