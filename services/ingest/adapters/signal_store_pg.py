"""`SignalStore` over PostgreSQL: suppressions, consents, webhook dedupe, delivery status.

Suppressions and consents are committed on their own, at once (before the webhook answers and
before Kafka is asked), so the outbound gate sees them on its very next send; each claims its
provider event first, in the same transaction, so a replayed webhook changes nothing, and a
consent older than the one recorded for the contact changes nothing either. Everything else
of a webhook runs in one `unit()` transaction that commits only after Kafka acknowledged the
signals: a failed publish rolls the dedupe keys back, so the provider's retry is processed
again.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, tuple_, union, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from schemas.base import Channel
from services.common.db.models import (
    ContactConsent,
    JobExecution,
    Lead,
    ProviderEvent,
    Suppression,
)
from services.ingest.domain.model import Consent, ConsentChange, ConsentResult, TouchRow

MAX_LEADS_PER_CONTACT = 50


async def _claim(
    conn: AsyncConnection, provider: str, key: str, tenant_id: uuid.UUID | None
) -> bool:
    """Record a provider event as processed; False when it was before."""
    stmt = (
        insert(ProviderEvent)
        .values(provider=provider, event_key=key[:300], tenant_id=tenant_id)
        .on_conflict_do_nothing()
        .returning(ProviderEvent.event_key)
    )
    return (await conn.execute(stmt)).first() is not None


async def _suppress(
    conn: AsyncConnection,
    tenant_id: uuid.UUID | None,
    channel: Channel,
    contact: str,
    reason: str,
    source: str,
) -> bool:
    stmt = (
        insert(Suppression)
        .values(tenant_id=tenant_id, channel=channel.value, contact=contact, reason=reason[:50])
        .values(source=source[:50])
        .on_conflict_do_nothing()
        .returning(Suppression.id)
    )
    return (await conn.execute(stmt)).first() is not None


class PostgresSignalUnit:
    """`SignalUnit`: one transaction of a webhook (see `PostgresSignalStore.unit`)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def claim(
        self, provider: str, keys: Sequence[str], tenant_id: uuid.UUID | None = None
    ) -> set[str]:
        """Record event keys as processed; returns those not seen before."""
        if not keys:
            return set()
        stmt = (
            insert(ProviderEvent)
            .values([{"provider": provider, "event_key": k, "tenant_id": tenant_id} for k in keys])
            .on_conflict_do_nothing()
            .returning(ProviderEvent.event_key)
        )
        return set((await self._conn.execute(stmt)).scalars())

    async def delivery_by_command(
        self,
        command_id: uuid.UUID,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None:
        return await self._delivery(
            JobExecution.command_id == command_id, status, error, at, not_after
        )

    async def delivery_by_message(
        self,
        message_id: str,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None:
        return await self._delivery(
            JobExecution.provider_message_id == message_id, status, error, at, not_after
        )

    async def _delivery(
        self,
        where: ColumnElement[bool],
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str],
    ) -> TouchRow | None:
        """Set the row's delivery status unless it is already further along; the row either way."""
        blocked = list(not_after)
        stmt = (
            update(JobExecution)
            .where(where)
            .where(
                JobExecution.delivery_status.is_(None)
                | JobExecution.delivery_status.not_in(blocked or [""])
            )
            .values(delivery_status=status, delivery_error=error, delivery_updated_at=at)
            .returning(
                JobExecution.tenant_id,
                JobExecution.lead_id,
                JobExecution.command_id,
                JobExecution.channel,
                JobExecution.recipient,
            )
        )
        row = (await self._conn.execute(stmt)).first()
        if row is None:  # already further along (or unknown): still say whose it is
            look = select(
                JobExecution.tenant_id,
                JobExecution.lead_id,
                JobExecution.command_id,
                JobExecution.channel,
                JobExecution.recipient,
            ).where(where)
            row = (await self._conn.execute(look.limit(1))).first()
        if row is None:
            return None
        return TouchRow(row[0], row[1], row[2], Channel(row[3]), row[4])

    async def leads_for_contact(
        self, channel: Channel, contact: str
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant, lead) pairs this email/phone belongs to: the read model and the ledger."""
        column = Lead.email if channel is Channel.EMAIL else Lead.phone
        stmt = union(
            select(Lead.tenant_id, Lead.lead_id).where(column == contact),
            select(JobExecution.tenant_id, JobExecution.lead_id).where(
                JobExecution.channel == channel.value, JobExecution.recipient == contact
            ),
        ).limit(MAX_LEADS_PER_CONTACT)
        return sorted((r[0], r[1]) for r in (await self._conn.execute(stmt)).all())


class PostgresSignalStore:
    """`SignalStore` over the ingest engine. Every `PRUNE_EVERY` units it also forgets dedupe
    keys older than `KEEP_EVENTS` (SendGrid retries for 24 h; Twilio within minutes)."""

    PRUNE_EVERY = 1000
    KEEP_EVENTS = timedelta(days=7)

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._units = 0

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
        """At `tenant_id` (the gate applies it to that tenant's company), or every location
        (tenant NULL: the provider account and sender are shared, e.g. bounces, STOP). True
        when the row is new; a `claim` (provider, event key) claimed before changes nothing."""
        async with self._engine.begin() as conn:
            if claim is not None and not await _claim(conn, *claim, tenant_id):
                return False
            return await _suppress(conn, tenant_id, channel, contact, reason, source)

    async def consent(self, change: ConsentChange) -> ConsentResult:
        async with self._engine.begin() as conn:
            if not await _claim(conn, change.provider, change.event_key, change.tenant_id):
                # seen before: a duplicate if it is still the recorded change, else stale
                recorded = select(ContactConsent.event_key).where(
                    ContactConsent.tenant_id.is_(None)
                    if change.tenant_id is None
                    else ContactConsent.tenant_id == change.tenant_id,
                    ContactConsent.channel == change.channel.value,
                    ContactConsent.contact == change.contact,
                )
                latest = (await conn.execute(recorded)).scalar_one_or_none()
                same = latest == change.event_key
                return ConsentResult(Consent.DUPLICATE if same else Consent.STALE)
            values = {
                "tenant_id": change.tenant_id,
                "channel": change.channel.value,
                "contact": change.contact,
                "opted_out": change.opted_out,
                "changed_at": change.at,
                "provider": change.provider,
                "event_key": change.event_key,
            }
            new = insert(ContactConsent).values(**values)
            record = new.on_conflict_do_update(
                index_elements=["tenant_id", "channel", "contact"],
                set_={**{k: new.excluded[k] for k in values}, "updated_at": func.now()},
                where=new.excluded.changed_at >= ContactConsent.changed_at,
            ).returning(ContactConsent.id)
            if (await conn.execute(record)).first() is None:  # a later change is recorded
                return ConsentResult(Consent.STALE)
            if change.opted_out:
                added = await _suppress(
                    conn, None, change.channel, change.contact, change.reason, change.source
                )
                return ConsentResult(Consent.APPLIED, int(added))
            lift = delete(Suppression).where(
                Suppression.channel == change.channel.value,
                Suppression.contact == change.contact,
                Suppression.reason.in_(list(change.lifts) or [""]),
            )
            if change.tenant_id is not None:  # one location's opt-in lifts its own only
                lift = lift.where(Suppression.tenant_id == change.tenant_id)
            lifted = (await conn.execute(lift)).rowcount or 0
            return ConsentResult(Consent.APPLIED, lifted)

    async def lead_contacts(
        self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID, channel: Channel
    ) -> list[str]:
        """The lead's email/phone in the read model and every recipient of its touch points
        (an address that changed since a message was sent is still found)."""
        column = Lead.email if channel is Channel.EMAIL else Lead.phone
        stmt = union(
            select(column.label("contact")).where(
                Lead.lead_id == lead_id, Lead.tenant_id == tenant_id, column.is_not(None)
            ),
            select(JobExecution.recipient).where(
                JobExecution.tenant_id == tenant_id,
                JobExecution.lead_id == lead_id,
                JobExecution.channel == channel.value,
                JobExecution.recipient.is_not(None),
            ),
        ).limit(MAX_LEADS_PER_CONTACT)
        async with self._engine.connect() as conn:
            return [str(r[0]) for r in (await conn.execute(stmt)).all() if r[0]]

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[PostgresSignalUnit]:
        async with self._engine.begin() as conn:
            yield PostgresSignalUnit(conn)
        self._units += 1
        if self._units % self.PRUNE_EVERY == 0:
            await self.prune()

    async def prune(self, *, limit: int = 10_000) -> int:
        """Delete at most `limit` dedupe keys older than KEEP_EVENTS (bounded work)."""
        cutoff = datetime.now(UTC) - self.KEEP_EVENTS
        old = (
            select(ProviderEvent.provider, ProviderEvent.event_key)
            .where(ProviderEvent.received_at < cutoff)
            .limit(limit)
        )
        stmt = delete(ProviderEvent).where(
            tuple_(ProviderEvent.provider, ProviderEvent.event_key).in_(old)
        )
        async with self._engine.begin() as conn:
            return (await conn.execute(stmt)).rowcount or 0
