"""Hand-written fakes of the signal service's ports (store, publisher, lead reader)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime

from schemas.base import Channel
from schemas.events import ContactSignal
from services.ingest.domain.model import Consent, ConsentChange, ConsentResult, TouchRow
from services.ingest.errors import PublishUnavailable


@dataclass
class Touch:
    row: TouchRow
    provider_message_id: str | None = None
    delivery_status: str | None = None
    delivery_error: str | None = None


@dataclass
class FakeStore:
    """Suppressions, dedupe keys and touch rows in memory; `log` records the order of effects."""

    suppressions: dict[tuple[str, str], str] = field(default_factory=dict)
    #: where each suppression holds: a tenant (its company) or None (every location)
    scopes: dict[tuple[str, str], uuid.UUID | None] = field(default_factory=dict)
    claimed: set[tuple[str, str]] = field(default_factory=set)
    touches: list[Touch] = field(default_factory=list)
    contacts: dict[str, list[tuple[uuid.UUID, uuid.UUID]]] = field(default_factory=dict)
    consents: dict[tuple[uuid.UUID | None, str, str], tuple[bool, datetime, str]] = field(
        default_factory=dict
    )
    log: list[str] = field(default_factory=list)

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
        if claim is not None:
            if claim in self.claimed:
                return False
            self.claimed.add(claim)
        self.log.append(f"suppress {channel.value} {contact}")
        new = (channel.value, contact) not in self.suppressions
        self.suppressions.setdefault((channel.value, contact), reason)
        self.scopes.setdefault((channel.value, contact), tenant_id)
        return new

    async def consent(self, change: ConsentChange) -> ConsentResult:
        claim = (change.provider, change.event_key)
        key = (change.tenant_id, change.channel.value, change.contact)
        recorded = self.consents.get(key)
        if claim in self.claimed:
            latest = recorded is not None and recorded[2] == change.event_key
            return ConsentResult(Consent.DUPLICATE if latest else Consent.STALE)
        self.claimed.add(claim)
        if recorded is not None and recorded[1] > change.at:
            return ConsentResult(Consent.STALE)
        self.consents[key] = (change.opted_out, change.at, change.event_key)
        if change.opted_out:
            return ConsentResult(
                Consent.APPLIED,
                int(
                    await self.suppress(
                        channel=change.channel,
                        contact=change.contact,
                        reason=change.reason,
                        source=change.source,
                    )
                ),
            )
        self.log.append(f"unsuppress {change.channel.value} {change.contact}")
        if self.suppressions.get((change.channel.value, change.contact)) in change.lifts:
            del self.suppressions[(change.channel.value, change.contact)]
            return ConsentResult(Consent.APPLIED, 1)
        return ConsentResult(Consent.APPLIED, 0)

    async def lead_contacts(
        self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID, channel: Channel
    ) -> list[str]:
        email = channel is Channel.EMAIL
        return [
            c
            for c, pairs in self.contacts.items()
            if (tenant_id, lead_id) in pairs and ("@" in c) == email
        ]

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[FakeUnit]:
        unit = FakeUnit(self)
        yield unit  # an exception here drops the unit's claims (rollback)
        self.claimed |= unit.claims
        for touch, status, error in unit.updates:
            touch.delivery_status, touch.delivery_error = status, error
        self.log.append("commit")


@dataclass
class FakeUnit:
    store: FakeStore
    claims: set[tuple[str, str]] = field(default_factory=set)
    updates: list[tuple[Touch, str, str | None]] = field(default_factory=list)

    async def claim(
        self, provider: str, keys: Sequence[str], tenant_id: uuid.UUID | None = None
    ) -> set[str]:
        fresh = {k for k in keys if (provider, k) not in self.store.claimed}
        self.claims |= {(provider, k) for k in fresh}
        return fresh

    def _update(
        self, touch: Touch | None, status: str, error: str | None, not_after: Iterable[str]
    ) -> TouchRow | None:
        if touch is None:
            return None
        if touch.delivery_status not in set(not_after):
            self.updates.append((touch, status, error))
        return touch.row

    async def delivery_by_command(
        self,
        command_id: uuid.UUID,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None:
        touch = next((t for t in self.store.touches if t.row.command_id == command_id), None)
        return self._update(touch, status, error, not_after)

    async def delivery_by_message(
        self,
        message_id: str,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None:
        touch = next((t for t in self.store.touches if t.provider_message_id == message_id), None)
        return self._update(touch, status, error, not_after)

    async def leads_for_contact(
        self, channel: Channel, contact: str
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        return list(self.store.contacts.get(contact, []))


@dataclass
class FakePublisher:
    published: list[ContactSignal] = field(default_factory=list)
    fail: bool = False
    log: list[str] | None = None

    async def publish(self, signals: Sequence[ContactSignal]) -> None:
        if self.log is not None:
            self.log.append(f"publish {len(signals)}")
        if self.fail and signals:
            raise PublishUnavailable("Kafka down (fake)", retry_after=1)
        self.published.extend(signals)


@dataclass
class FakeLeads:
    tokens: dict[str, uuid.UUID] = field(default_factory=dict)
    views: dict[tuple[uuid.UUID, uuid.UUID], str] = field(default_factory=dict)

    async def tenant_for_token(self, token: str) -> uuid.UUID | None:
        return self.tokens.get(token)

    async def lead_view(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> str | None:
        return self.views.get((tenant_id, lead_id))

    async def lead_exists(self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID) -> bool:
        return (tenant_id, lead_id) in self.views
