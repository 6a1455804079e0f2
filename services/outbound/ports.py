"""The small interfaces the outbound use cases depend on; adapters implement them, unit tests
use hand-written fakes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from schemas.base import Channel
from schemas.events import TouchPointCommand, TouchPointOutcome
from services.common.domain.consent import ConsentRecord
from services.outbound.domain.model import (
    ClaimResult,
    GateFacts,
    LedgerRow,
    LedgerStatus,
    Lookup,
    OutboundMessage,
    Probe,
    TenantProfile,
)


class Ledger(Protocol):
    """The send ledger (job_executions): the dedupe store of every outbound effect."""

    async def claim(
        self,
        command: TouchPointCommand,
        *,
        recipient: str | None,
        now: datetime,
        cap_since: datetime,
        other_contact: str | None = None,
    ) -> ClaimResult:
        """Insert the command as 'claimed' (or re-claim a due 'deferred' row), else return the
        row that already holds it. Reads the recipient's gate facts in the same round trip
        (with the source consent of `other_contact`, the lead's contact on the other channel)."""
        ...

    async def facts(
        self,
        *,
        command_id: uuid.UUID,
        tenant_id: uuid.UUID,
        lead_id: uuid.UUID,
        channel: Channel,
        recipient: str | None,
        cap_since: datetime,
        other_contact: str | None = None,
        campaign: str | None = None,
        now: datetime | None = None,
    ) -> GateFacts: ...

    async def get(self, command_id: uuid.UUID) -> LedgerRow | None: ...

    async def heartbeat(self, command_id: uuid.UUID, *, now: datetime) -> None:
        """Refresh a claim this process owns, so no other process takes it over."""
        ...

    async def take_over(
        self, command_id: uuid.UUID, *, seen_claimed_at: datetime, now: datetime
    ) -> bool:
        """Take a stale claim (True) unless somebody else touched it since it was read."""
        ...

    async def finish(
        self,
        command_id: uuid.UUID,
        *,
        status: LedgerStatus,
        reason: str,
        now: datetime,
        provider: str | None = None,
        provider_message_id: str | None = None,
        deferred_until: datetime | None = None,
        only_if_claimed_at: datetime | None = None,
        consent: ConsentRecord | None = None,
    ) -> bool:
        """Record the final status of a claimed row (with the source consent the gate decided
        on); False if it was not 'claimed' anymore."""
        ...

    async def stale_claims(self, *, older_than: datetime, limit: int = 100) -> list[LedgerRow]: ...

    async def suppress(
        self, *, tenant_id: uuid.UUID, channel: Channel, contact: str, reason: str, source: str
    ) -> None: ...


class TenantDirectory(Protocol):
    async def get(self, tenant_id: uuid.UUID) -> TenantProfile | None: ...


class Sender(Protocol):
    """One provider (SendGrid for email, Twilio for SMS)."""

    @property
    def name(self) -> str: ...

    @property
    def pacing_key(self) -> str:
        """The sender identity a rate limit applies to (a From number, an API key …)."""
        ...

    @property
    def lookup_settle_seconds(self) -> float:
        """How long after an attempt a `NotFound` from `lookup` can be trusted."""
        ...

    async def send(self, message: OutboundMessage) -> str:
        """Send; returns the provider's message id or raises a `ProviderError`."""
        ...

    async def lookup(self, probe: Probe, *, since: datetime) -> Lookup:
        """Did the provider accept this message at or after `since`?"""
        ...

    async def close(self) -> None:
        """Close its connections (the process is stopping)."""
        ...


class OutcomePublisher(Protocol):
    async def publish(self, outcome: TouchPointOutcome) -> None: ...


class Renderer(Protocol):
    def chat_link(self, command: TouchPointCommand) -> str:
        """`<CHAT_BASE_URL>/<leadId>`, carried by every message."""
        ...

    def render(
        self,
        command: TouchPointCommand,
        tenant: TenantProfile,
        *,
        now: datetime,
        validity_seconds: int,
    ) -> OutboundMessage:
        """Build the message for a command, or raise `TemplateError`."""
        ...


class CommandHandler(Protocol):
    """Decides and acts on one command (the consumer's use case)."""

    async def handle(self, command: TouchPointCommand) -> TouchPointOutcome: ...
