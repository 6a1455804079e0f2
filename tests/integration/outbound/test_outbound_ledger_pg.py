"""The PostgreSQL send ledger (job_executions) and tenant directory on the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from schemas.base import Channel
from services.common.db.tenants import add_services, set_hours
from services.outbound.adapters.ledger_pg import PostgresLedger
from services.outbound.adapters.pg_pool import open_pool
from services.outbound.adapters.tenants_pg import PostgresTenantDirectory
from services.outbound.domain.model import AlreadyClaimed, Claimed, LedgerStatus
from tests.unit.outbound.support import command

pytestmark = pytest.mark.integration
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = await open_pool(db_url, size=4)
    yield p
    await p.close()


@pytest.fixture
async def tenant_id(make_tenant: Any) -> uuid.UUID:
    tenant, _ = await make_tenant()
    return tenant.id  # type: ignore[no-any-return]


async def test_claim_once_then_the_row_answers(pool: Any, tenant_id: uuid.UUID) -> None:
    ledger = PostgresLedger(pool)
    cmd = command(tenant_id=tenant_id, at=NOW)
    first = await ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
    assert isinstance(first, Claimed)
    again = await ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
    assert isinstance(again, AlreadyClaimed) and again.row.status is LedgerStatus.CLAIMED
    assert await ledger.finish(
        cmd.command_id,
        status=LedgerStatus.SENT,
        reason="accepted",
        now=NOW,
        provider="sendgrid",
        provider_message_id="abc",
    )
    assert not await ledger.finish(
        cmd.command_id, status=LedgerStatus.FAILED, reason="late", now=NOW
    )
    done = await ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
    assert isinstance(done, AlreadyClaimed)
    row = done.row
    assert (row.status, row.provider, row.provider_message_id, row.reason) == (
        LedgerStatus.SENT,
        "sendgrid",
        "abc",
        "accepted",
    )
    assert (row.recipient, row.tenant_id, row.lead_id) == (
        "sam@example.com",
        tenant_id,
        cmd.lead_id,
    )


async def test_concurrent_claims_have_exactly_one_winner(pool: Any, tenant_id: uuid.UUID) -> None:
    ledgers = [PostgresLedger(pool) for _ in range(4)]
    cmd = command(tenant_id=tenant_id, at=NOW)
    results = await asyncio.gather(
        *(
            ledgers[i % 4].claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
            for i in range(16)
        )
    )
    assert sum(isinstance(r, Claimed) for r in results) == 1


async def test_deferred_row_is_reclaimed_only_once_due(pool: Any, tenant_id: uuid.UUID) -> None:
    ledger = PostgresLedger(pool)
    cmd = command(tenant_id=tenant_id, at=NOW)
    await ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
    until = NOW + timedelta(hours=2)
    await ledger.finish(
        cmd.command_id,
        status=LedgerStatus.DEFERRED,
        reason="outside_send_window",
        now=NOW,
        deferred_until=until,
    )
    early = await ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
    assert isinstance(early, AlreadyClaimed) and early.row.deferred_until == until
    due = await ledger.claim(cmd, recipient="sam@example.com", now=until, cap_since=NOW)
    assert isinstance(due, Claimed) and due.reclaimed
    row = await ledger.get(cmd.command_id)
    assert row is not None and row.status is LedgerStatus.CLAIMED and row.attempts == 2
    # and only one re-claimer wins
    again = await ledger.claim(cmd, recipient="sam@example.com", now=until, cap_since=NOW)
    assert isinstance(again, AlreadyClaimed)


async def test_gate_facts_suppression_and_frequency(pool: Any, tenant_id: uuid.UUID) -> None:
    ledger = PostgresLedger(pool)
    contact = f"c{uuid.uuid4().hex[:8]}@example.com"
    since = NOW - timedelta(hours=24)
    statuses = [LedgerStatus.SENT, LedgerStatus.SKIPPED, LedgerStatus.UNKNOWN, None]
    for status in statuses:  # None: left claimed (in flight) — counts too
        c = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
        await ledger.claim(c, recipient=contact, now=NOW, cap_since=since)
        if status is not None:
            await ledger.finish(c.command_id, status=status, reason="x", now=NOW)
    old = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
    await ledger.claim(old, recipient=contact, now=NOW - timedelta(days=2), cap_since=since)
    await ledger.finish(
        old.command_id, status=LedgerStatus.SENT, reason="x", now=NOW - timedelta(days=2)
    )
    probe = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
    claim = await ledger.claim(probe, recipient=contact, now=NOW, cap_since=since)
    assert isinstance(claim, Claimed)
    assert claim.facts.recent_sends == 3 and not claim.facts.suppressed  # sent, unknown, claimed
    await ledger.suppress(
        tenant_id=tenant_id, channel=Channel.EMAIL, contact=contact, reason="unsub", source="t"
    )
    await ledger.suppress(  # idempotent
        tenant_id=tenant_id, channel=Channel.EMAIL, contact=contact, reason="unsub", source="t"
    )
    facts = await ledger.facts(
        command_id=probe.command_id,
        tenant_id=tenant_id,
        channel=Channel.EMAIL,
        recipient=contact,
        cap_since=since,
    )
    assert facts.suppressed
    sms = await ledger.facts(
        command_id=probe.command_id,
        tenant_id=tenant_id,
        channel=Channel.SMS,
        recipient=contact,
        cap_since=since,
    )
    assert not sms.suppressed and sms.recent_sends == 0


async def test_global_suppression_applies_to_every_tenant(pool: Any, tenant_id: uuid.UUID) -> None:
    ledger = PostgresLedger(pool)
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    async with pool.connection() as conn:
        await conn.execute(
            "INSERT INTO suppressions (tenant_id, channel, contact, reason) "
            "VALUES (NULL, 'sms', %s, 'stop')",
            (phone,),
        )
    cmd = command(tenant_id=tenant_id, channel=Channel.SMS, phone=phone, at=NOW)
    claim = await ledger.claim(cmd, recipient=phone, now=NOW, cap_since=NOW)
    assert isinstance(claim, Claimed) and claim.facts.suppressed


async def test_stale_claims_heartbeat_and_take_over(pool: Any, tenant_id: uuid.UUID) -> None:
    ledger = PostgresLedger(pool)
    cmd = command(tenant_id=tenant_id, at=NOW)
    old = NOW - timedelta(minutes=10)
    await ledger.claim(cmd, recipient="sam@example.com", now=old, cap_since=old)
    stale = await ledger.stale_claims(older_than=NOW - timedelta(minutes=5), limit=10_000)
    assert cmd.command_id in {r.command_id for r in stale}
    await ledger.heartbeat(cmd.command_id, now=NOW)
    fresh = await ledger.stale_claims(older_than=NOW - timedelta(minutes=5), limit=10_000)
    assert cmd.command_id not in {r.command_id for r in fresh}
    assert not await ledger.take_over(cmd.command_id, seen_claimed_at=old, now=NOW)
    assert await ledger.take_over(cmd.command_id, seen_claimed_at=NOW, now=NOW + timedelta(1))
    assert not await ledger.finish(
        cmd.command_id,
        status=LedgerStatus.SENT,
        reason="x",
        now=NOW,
        only_if_claimed_at=NOW,
    )


async def test_tenant_directory_reads_hours_catalog_and_caches(
    pool: Any, db_engine: Any, make_tenant: Any
) -> None:
    tenant, _ = await make_tenant(us_state="TX", timezone="America/Chicago")
    async with db_engine.begin() as conn:
        await set_hours(conn, tenant_id=tenant.id, hours={0: (time(9), time(17))})
        await add_services(conn, tenant_id=tenant.id, services=[("tint", "Window tint", 19900)])
    directory = PostgresTenantDirectory(pool, ttl_seconds=60)
    profile = await directory.get(tenant.id)
    assert profile is not None
    assert (profile.timezone, profile.us_state, profile.active) == ("America/Chicago", "TX", True)
    assert profile.hours == {0: (time(9), time(17))}
    assert profile.catalog == ("Window tint",)
    assert profile.postal_address == "1 Main St, Springfield, IL 62701"
    assert await directory.get(uuid.uuid4()) is None
