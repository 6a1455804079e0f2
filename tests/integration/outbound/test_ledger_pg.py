"""The PostgreSQL send ledger (job_executions), held to the `Ledger` contract the unit tests'
in-memory ledger meets too (tests/unit/outbound/ledger_contract.py), and the tenant directory,
on the real database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import text

from schemas.base import Channel
from services.common.db.tenants import add_services, set_hours
from services.common.errors import DataRejected, InfrastructureError
from services.outbound.adapters.ledger_pg import (
    CALL_CLAIM_MANY_SQL,
    CALL_CLAIM_SQL,
    CLAIM_FUNCTION_SQL,
    CLAIM_MANY_FUNCTION_SQL,
    PostgresLedger,
    claim_params,
    define_claims,
)
from services.outbound.adapters.pg_pool import open_pool
from services.outbound.adapters.tenants_pg import PostgresTenantDirectory
from services.outbound.domain.model import AlreadyClaimed, Claimed, LedgerStatus
from tests.support.ledger_contract import LedgerContract, OptOutLead, SuppressGlobally
from tests.unit.outbound.support import command

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    p = await open_pool(db_url, size=4)
    yield p
    await p.close()


@pytest.fixture
async def tenant_id(make_tenant: Any) -> uuid.UUID:
    tenant, _ = await make_tenant()
    return tenant.id  # type: ignore[no-any-return]


class TestPostgresLedger(LedgerContract):
    @pytest.fixture
    def ledger(self, pool: AsyncConnectionPool[Any]) -> PostgresLedger:
        return PostgresLedger(pool)

    @pytest.fixture
    def suppress_globally(self, pool: AsyncConnectionPool[Any]) -> SuppressGlobally:
        async def suppress(channel: Channel, contact: str) -> None:
            async with pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO suppressions (tenant_id, channel, contact, reason) "
                    "VALUES (NULL, %s, %s, 'stop')",
                    (channel.value, contact),
                )

        return suppress

    @pytest.fixture
    def opt_out_lead(self, pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID) -> OptOutLead:
        """A `leads` row as the projection writes it for a lead that opted out of `channel`."""

        async def opt_out(lead_id: uuid.UUID, channel: Channel) -> None:
            column = "email_opted_out" if channel is Channel.EMAIL else "sms_opted_out"
            async with pool.connection() as conn:
                await conn.execute(
                    "INSERT INTO leads (lead_id, tenant_id, state, source, version, "
                    f"created_at, updated_at, {column}) "
                    "VALUES (%s, %s, 'lost', 'webhook', 1, now(), now(), true)",
                    (lead_id, tenant_id),
                )

        return opt_out


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


async def test_the_pool_opens_every_connection_at_start_and_keeps_them(db_url: str) -> None:
    """A burst never waits for the pool to grow (a connection costs ~10 ms of CPU a side)."""
    pool = await open_pool(db_url, size=5)
    try:
        assert pool.get_stats()["pool_size"] == 5
        async with pool.connection() as conn:
            cur = await conn.execute("SHOW lock_timeout")
            assert (await cur.fetchone()) == ("5s",)  # each session as configured
        await pool.check()  # what the pool's maintenance does: nothing is closed as spare
        assert pool.get_stats()["pool_size"] == 5
    finally:
        await pool.close()


async def test_every_profile_is_read_at_start_and_served_without_a_read(
    db_url: str, db_engine: Any, make_tenant: Any
) -> None:
    """`preload` (at start): every location's first command after a deploy finds its profile
    in memory; here the pool is gone after it, so any read would fail."""
    first, _ = await make_tenant(timezone="America/Chicago")
    second, _ = await make_tenant(timezone="America/Denver")
    broken, _ = await make_tenant()
    async with db_engine.begin() as conn:
        await set_hours(conn, tenant_id=second.id, hours={2: (time(8), time(12))})
        await conn.execute(
            text("UPDATE tenants SET timezone = 'Mars/Olympus' WHERE id = :id"), {"id": broken.id}
        )
    pool = await open_pool(db_url, size=1)
    directory = PostgresTenantDirectory(pool, ttl_seconds=60)
    assert await directory.preload() >= 2
    await pool.close()
    one, two = await directory.get(first.id), await directory.get(second.id)
    assert one is not None and one.timezone == "America/Chicago"
    assert two is not None and two.hours == {2: (time(8), time(12))}
    with pytest.raises(InfrastructureError):  # left to its own read, which needs the pool
        await directory.get(broken.id)


async def test_cap_and_suppressions_apply_per_contact_across_a_companys_locations(
    pool: AsyncConnectionPool[Any], make_tenant: Any
) -> None:
    """One business, one customer: a send or a suppression at one location of a Shopmonkey
    company counts at its other locations, never at another company's."""
    company = f"co_{uuid.uuid4().hex[:8]}"
    here, _ = await make_tenant(company_id=company)
    sibling, _ = await make_tenant(company_id=company)
    stranger, _ = await make_tenant()  # another company
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    contact, phone = f"c{uuid.uuid4().hex[:8]}@example.com", f"+1555{uuid.uuid4().int % 10**7:07d}"

    async def facts(tenant: Any, channel: Channel = Channel.EMAIL, to: str = contact) -> Any:
        return await ledger.facts(
            command_id=uuid.uuid4(),
            tenant_id=tenant.id,
            lead_id=uuid.uuid4(),  # a lead that never opted out
            channel=channel,
            recipient=to,
            cap_since=now - timedelta(hours=24),
        )

    sent = command(tenant_id=here.id, email=contact, at=now)
    assert isinstance(await ledger.claim(sent, recipient=contact, now=now, cap_since=now), Claimed)
    await ledger.finish(sent.command_id, status=LedgerStatus.SENT, reason="accepted", now=now)
    assert (await facts(here)).recent_sends == 1
    assert (await facts(sibling)).recent_sends == 1  # the other location's cap is spent too
    assert (await facts(stranger)).recent_sends == 0
    # the claim reads the same facts in its one statement
    other = command(tenant_id=sibling.id, email=contact, at=now)
    claimed = await ledger.claim(
        other, recipient=contact, now=now, cap_since=now - timedelta(hours=24)
    )
    assert isinstance(claimed, Claimed) and claimed.facts.recent_sends == 1

    await ledger.suppress(
        tenant_id=here.id, channel=Channel.SMS, contact=phone, reason="invalid", source="twilio"
    )
    assert (await facts(sibling, Channel.SMS, phone)).suppressed
    assert (await facts(here, Channel.SMS, phone)).suppressed
    assert not (await facts(stranger, Channel.SMS, phone)).suppressed


async def test_the_claim_reads_the_source_consent_of_both_channels(
    pool: AsyncConnectionPool[Any], make_tenant: Any
) -> None:
    """The consent of the recipient on the command's channel, and of the lead's contact on the
    other channel (whether a preference for that channel can be honoured), of the tenant's
    company only; the facts before a retry read the same."""
    company = f"co_{uuid.uuid4().hex[:8]}"
    tenant, _ = await make_tenant(company_id=company)
    stranger, _ = await make_tenant()
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    email, phone = f"c{uuid.uuid4().hex[:8]}@example.com", f"+1202555{uuid.uuid4().int % 10**4:04d}"
    async with pool.connection() as conn:
        for channel, contact, opted_in, preferred in (
            ("email", email, True, "sms"),
            ("sms", phone, True, "sms"),
        ):
            await conn.execute(
                "INSERT INTO source_consent (company_id, channel, contact, source, opted_in,"
                " preferred, changed_at, event_key)"
                " VALUES (%s, %s, %s, 'shopmonkey', %s, %s, %s, 'k')",
                (company, channel, contact, opted_in, preferred, now),
            )

    mail = command(tenant_id=tenant.id, email=email, phone=phone, at=now)
    claimed = await ledger.claim(mail, recipient=email, now=now, cap_since=now, other_contact=phone)
    assert isinstance(claimed, Claimed)
    facts = claimed.facts
    assert facts.consent is not None and facts.other_consent is not None
    assert (facts.consent.channel, facts.consent.contact, facts.consent.preferred) == (
        Channel.EMAIL,
        email,
        "sms",
    )
    assert (facts.other_consent.channel, facts.other_consent.contact) == (Channel.SMS, phone)
    assert facts.other_consent.opted_in is True

    async def read(tenant_id: uuid.UUID, channel: Channel, to: str, other: str | None) -> Any:
        return await ledger.facts(
            command_id=uuid.uuid4(),
            tenant_id=tenant_id,
            lead_id=uuid.uuid4(),
            channel=channel,
            recipient=to,
            cap_since=now,
            other_contact=other,
        )

    sms = await read(tenant.id, Channel.SMS, phone, email)
    assert sms.consent.contact == phone and sms.other_consent.contact == email
    assert (await read(tenant.id, Channel.SMS, phone, None)).other_consent is None
    elsewhere = await read(stranger.id, Channel.EMAIL, email, phone)  # another company
    assert (elsewhere.consent, elsewhere.other_consent) == (None, None)


async def test_claims_for_one_customer_at_the_same_instant_see_each_other(
    pool: AsyncConnectionPool[Any], make_tenant: Any
) -> None:
    """Two locations of a company claim a message to one customer at the same instant (their
    commands sit on different partitions, often different workers): the later claim counts
    the earlier one, in the frequency cap and in the cap across campaigns. Never neither,
    which would send the customer two messages that day."""
    company = f"co_{uuid.uuid4().hex[:8]}"
    here, _ = await make_tenant(company_id=company)
    sibling, _ = await make_tenant(company_id=company)
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    blind = []
    for attempt in range(60):
        contact = f"race{attempt}-{uuid.uuid4().hex[:8]}@example.com"
        review = command(tenant_id=here.id, email=contact, at=now, campaign="review")
        nurture = command(tenant_id=sibling.id, email=contact, at=now)
        got = await asyncio.gather(
            *(
                ledger.claim(c, recipient=contact, now=now, cap_since=now - timedelta(hours=24))
                for c in (review, nurture)
            )
        )
        assert all(isinstance(g, Claimed) for g in got)
        facts = [g.facts for g in got if isinstance(g, Claimed)]
        if not any(f.recent_sends for f in facts) or not any(f.other_campaign_today for f in facts):
            blind.append(attempt)
    assert not blind, f"{len(blind)} of 60 pairs of claims did not see each other"


async def claim_email(
    pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID, contact: str, **changes: Any
) -> Any:
    """Claim, now, an email to `contact` (a command with `changes`), caps over 24 h."""
    now = datetime.now(UTC)
    email = command(tenant_id=tenant_id, email=contact, at=now).model_copy(update=changes)
    return await PostgresLedger(pool).claim(
        email, recipient=contact, now=now, cap_since=now - timedelta(hours=24)
    )


async def test_a_claim_that_fails_after_taking_the_lock_lets_the_customer_go(
    pool: AsyncConnectionPool[Any], db_url: str, make_tenant: Any
) -> None:
    """The contact lock and the claim go in one statement (its own transaction): when
    PostgreSQL refuses the claim, the lock goes with it. A lock left behind would make every
    later claim to that customer, from any connection, wait out LOCK_TIMEOUT and fail."""
    tenant, _ = await make_tenant()
    contact = f"refused-{uuid.uuid4().hex[:8]}@example.com"
    with pytest.raises(DataRejected, match="out of range"):
        # a step out of the column's range: refused before the lock
        await claim_email(pool, tenant.id, contact, step_index=2**31)
    with pytest.raises(DataRejected, match="too long"):
        # a campaign longer than its column (the schema bounds it; model_copy does not
        # check): refused by the insert, after the lock
        await claim_email(pool, tenant.id, contact, campaign="x" * 200)
    other = await open_pool(db_url, size=1)  # another session: a lock left would block it
    try:
        got = await claim_email(other, tenant.id, contact)
    finally:
        await other.close()
    assert isinstance(got, Claimed)


async def test_a_claim_puts_no_warning_in_the_server_log(db_url: str, make_tenant: Any) -> None:
    """The lock's timeout is set for the claim's implicit transaction without SET LOCAL, which
    PostgreSQL answers with a WARNING there (not a transaction block): one log line a claim."""
    tenant, _ = await make_tenant()
    notices: list[str] = []

    async def configure(conn: Any) -> None:
        conn.add_notice_handler(lambda diag: notices.append(str(diag.message_primary)))

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        db_url, min_size=1, max_size=1, kwargs={"autocommit": True}, configure=configure, open=False
    )
    await pool.open(wait=True)
    try:
        got = await claim_email(pool, tenant.id, f"quiet-{uuid.uuid4().hex[:8]}@example.com")
    finally:
        await pool.close()
    assert isinstance(got, Claimed)
    assert notices == []


async def claimed(ledger: PostgresLedger, tenant_id: uuid.UUID, n: int) -> list[Any]:
    """`n` commands to distinct customers, claimed now."""
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        c = command(tenant_id=tenant_id, email=f"f{i}-{uuid.uuid4().hex[:8]}@example.com", at=now)
        got = await ledger.claim(c, recipient=c.recipient.email, now=now, cap_since=now)
        assert isinstance(got, Claimed)
        out.append(c)
    return out


def sent(ledger: PostgresLedger, c: Any, **kw: Any) -> Any:
    return ledger.finish(
        c.command_id, status=LedgerStatus.SENT, reason="x", now=datetime.now(UTC), **kw
    )


async def test_finishes_at_the_same_time_share_statements_and_keep_their_own_answers(
    pool: AsyncConnectionPool[Any], make_tenant: Any
) -> None:
    """Finishes waiting at the same moment go in one statement (group commit), and each caller
    still gets its own answer: a decision for a claimed row is taken (True), a second decision
    of the same command is refused (False) whether it shares the moment or not, a finish that
    names another claim time is refused, and a finish PostgreSQL refuses (a NUL in its reason)
    fails alone, not the others of its round."""
    tenant, _ = await make_tenant()
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    commands = await claimed(ledger, tenant.id, 24)
    got = await asyncio.gather(
        *(
            sent(ledger, c, provider="sendgrid", provider_message_id=f"m{i}")
            for i, c in enumerate(commands[:20])
        ),
        sent(ledger, commands[0]),  # the same command again, in the same moment
        sent(ledger, commands[20], only_if_claimed_at=now - timedelta(minutes=5)),  # another claim
    )
    assert got == [True] * 20 + [False, False]
    assert ledger.finish_statements <= 3, ledger.finish_statements  # one a finish: 22
    before = ledger.finish_statements
    refused, taken = await asyncio.gather(
        ledger.finish(commands[21].command_id, status=LedgerStatus.FAILED, reason="\x00", now=now),
        sent(ledger, commands[22]),
        return_exceptions=True,
    )
    assert isinstance(refused, DataRejected) and taken is True
    assert ledger.finish_statements - before == 3  # the round, then each of its finishes
    rows = {c.command_id: await ledger.get(c.command_id) for c in commands}
    assert all(rows[c.command_id].status is LedgerStatus.SENT for c in commands[:20])  # type: ignore[union-attr]
    assert rows[commands[3].command_id].provider_message_id == "m3"  # type: ignore[union-attr]
    assert rows[commands[20].command_id].status is LedgerStatus.CLAIMED  # type: ignore[union-attr]
    assert rows[commands[21].command_id].status is LedgerStatus.CLAIMED  # type: ignore[union-attr]
    assert not await sent(ledger, commands[0])  # decided already


async def test_more_finishes_than_a_round_holds_take_more_rounds(
    pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID
) -> None:
    ledger = PostgresLedger(pool)
    ledger.max_finishes = 5
    commands = await claimed(ledger, tenant_id, 12)
    assert await asyncio.gather(*(sent(ledger, c) for c in commands)) == [True] * 12
    assert ledger.finish_statements == 3  # 5 + 5 + 2


async def test_a_locked_row_holds_up_only_its_own_finish(db_url: str, tenant_id: uuid.UUID) -> None:
    """Someone holds a claimed row's lock (an operator's open transaction): the round that
    has it fails on the session's lock_timeout, and each finish goes on its own, so the others
    are decided and only the locked one fails (as an outage would: it is retried)."""
    pool = await open_pool(db_url, size=4, lock_timeout="300ms")
    other = await psycopg.AsyncConnection.connect(db_url)
    try:
        ledger = PostgresLedger(pool)
        commands = await claimed(ledger, tenant_id, 6)
        await other.execute(
            "SELECT 1 FROM job_executions WHERE command_id = %s FOR UPDATE",
            (commands[2].command_id,),
        )
        got = await asyncio.gather(*(sent(ledger, c) for c in commands), return_exceptions=True)
        assert [g for i, g in enumerate(got) if i != 2] == [True] * 5
        assert isinstance(got[2], InfrastructureError), got[2]
        await other.rollback()
        assert await sent(ledger, commands[2])  # free again: decided
    finally:
        await other.close()
        await pool.close()


async def test_a_caller_that_goes_away_leaves_the_others_answered(
    pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID
) -> None:
    ledger = PostgresLedger(pool)
    commands = await claimed(ledger, tenant_id, 4)
    tasks = [asyncio.ensure_future(sent(ledger, c)) for c in commands]
    await asyncio.sleep(0)  # every finish is waiting for its round
    tasks[1].cancel()
    got = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(got[1], asyncio.CancelledError)
    assert [got[0], got[2], got[3]] == [True, True, True]
    row = await ledger.get(commands[1].command_id)
    assert row is not None and row.status is LedgerStatus.SENT  # its round went on


def claim_of(ledger: PostgresLedger, c: Any, now: datetime, contact: str | None = None) -> Any:
    return ledger.claim(
        c, recipient=contact or c.recipient.email, now=now, cap_since=now - timedelta(hours=24)
    )


async def test_claims_at_the_same_time_share_statements_and_keep_their_own_answers(
    pool: AsyncConnectionPool[Any], make_tenant: Any
) -> None:
    """Claims waiting at the same moment go in one statement (its locks, its claims, one
    commit), and each caller still gets its own answer: a claim to a customer another claim of
    the round holds counts it (as it counts a claim committed before), a command claimed twice
    in the same moment is claimed once (the second waits for the next round and finds the
    row), and a claim PostgreSQL refuses fails alone, not the others of its round."""
    company = f"co_{uuid.uuid4().hex[:8]}"
    here, _ = await make_tenant(company_id=company)
    sibling, _ = await make_tenant(company_id=company)
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    distinct = [
        command(tenant_id=here.id, email=f"r{i}-{uuid.uuid4().hex[:8]}@example.com", at=now)
        for i in range(20)
    ]
    shared = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    to_shared = [command(tenant_id=t.id, email=shared, at=now) for t in (here, sibling)]
    got = await asyncio.gather(
        *(claim_of(ledger, c, now) for c in [*distinct, *to_shared]),
        claim_of(ledger, distinct[0], now),  # the same command again, in the same moment
    )
    assert all(isinstance(g, Claimed) for g in got[:22]), got
    assert [g.facts.recent_sends for g in got[20:22]] == [0, 1]  # the later counts the earlier
    assert isinstance(got[22], AlreadyClaimed) and got[22].row.status is LedgerStatus.CLAIMED
    # a round of the 22, then the command again alone (one a claim: 23)
    assert ledger.claim_statements == 2, ledger.claim_statements
    rows = [await ledger.get(c.command_id) for c in distinct]
    assert all(r is not None and r.claimed_at == now for r in rows)  # to the microsecond

    before = ledger.claim_statements
    fine = [
        command(tenant_id=here.id, email=f"ok{i}-{uuid.uuid4().hex[:8]}@example.com", at=now)
        for i in range(2)
    ]
    bad = command(tenant_id=here.id, email=f"bad-{uuid.uuid4().hex[:8]}@example.com", at=now)
    bad = bad.model_copy(update={"campaign": "x" * 200})  # longer than its column
    results = await asyncio.gather(
        claim_of(ledger, fine[0], now),
        claim_of(ledger, fine[1], now),
        claim_of(ledger, bad, now),
        return_exceptions=True,
    )
    assert isinstance(results[0], Claimed) and isinstance(results[1], Claimed)
    assert isinstance(results[2], DataRejected), results[2]
    # the round of the three, refused as a whole, then each on its own
    assert ledger.claim_statements - before == 4
    nul = command(tenant_id=here.id, email=f"nul-{uuid.uuid4().hex[:8]}@example.com", at=now)
    nul = nul.model_copy(update={"template": "estimate\x00followup"})  # a broken peer's text
    ok = command(tenant_id=here.id, email=f"ok-{uuid.uuid4().hex[:8]}@example.com", at=now)
    refused, taken = await asyncio.gather(
        claim_of(ledger, nul, now), claim_of(ledger, ok, now), return_exceptions=True
    )
    assert isinstance(refused, DataRejected), refused
    assert isinstance(taken, Claimed)
    assert (await ledger.get(fine[1].command_id)) is not None
    assert await ledger.get(bad.command_id) is None


async def test_a_held_contact_lock_holds_up_the_claims_to_it_not_the_others(
    pool: AsyncConnectionPool[Any], db_url: str, tenant_id: uuid.UUID
) -> None:
    """Someone holds a contact's lock (an operator's open transaction, a contact every claim
    shares): its round waits ROUND_LOCK_TIMEOUT, then each claim goes on its own beside the
    next rounds; the others of the round are claimed, and so is a claim that comes after,
    while the claim to the held contact waits for the lock (and gets it once it is free)."""
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    held = f"held-{uuid.uuid4().hex[:8]}@example.com"
    other = await psycopg.AsyncConnection.connect(db_url)
    try:
        await other.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended("
            "(SELECT shopmonkey_company_id FROM tenants WHERE id = %s) || '|' || %s, 0))",
            (tenant_id, held),
        )
        to_held = command(tenant_id=tenant_id, email=held, at=now)
        free = [
            command(
                tenant_id=tenant_id, email=f"free{i}-{uuid.uuid4().hex[:8]}@example.com", at=now
            )
            for i in range(3)
        ]
        waiting = asyncio.ensure_future(claim_of(ledger, to_held, now))
        first = [asyncio.ensure_future(claim_of(ledger, c, now)) for c in free[:2]]
        got = await asyncio.wait_for(asyncio.gather(*first), timeout=4.5)  # < LOCK_TIMEOUT
        assert all(isinstance(g, Claimed) for g in got)
        later = await asyncio.wait_for(claim_of(ledger, free[2], now), timeout=2)
        assert isinstance(later, Claimed)
        assert not waiting.done()
        await other.rollback()  # the lock is free: the held claim goes on
        assert isinstance(await asyncio.wait_for(waiting, timeout=5), Claimed)
    finally:
        await other.close()


async def test_a_session_that_lost_the_claim_functions_gets_them_again(
    db_url: str, tenant_id: uuid.UUID
) -> None:
    """Something reset a session behind the pool (DISCARD ALL, a pooler in front): the claim
    finds its function gone, defines it again and goes on, alone and in a round, instead of
    failing on that connection for good."""
    pool = await open_pool(db_url, size=1, session=define_claims)
    try:
        async with pool.connection() as conn:
            await conn.execute("DISCARD ALL")  # the session's temporary functions go too
        ledger = PostgresLedger(pool)
        now = datetime.now(UTC)
        one = command(tenant_id=tenant_id, email=f"lost-{uuid.uuid4().hex[:8]}@example.com", at=now)
        assert isinstance(await claim_of(ledger, one, now), Claimed)
        async with pool.connection() as conn:
            await conn.execute("DISCARD ALL")
        some = [
            command(
                tenant_id=tenant_id, email=f"lost{i}-{uuid.uuid4().hex[:8]}@example.com", at=now
            )
            for i in range(3)
        ]
        got = await asyncio.gather(*(claim_of(ledger, c, now) for c in some))
        assert all(isinstance(g, Claimed) for g in got)
    finally:
        await pool.close()


async def test_record_only_claims_share_a_round_without_locks(
    pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID
) -> None:
    """A replay's record-only claims take no lock, in a round as alone, and are claimed with
    the others of their round."""
    ledger = PostgresLedger(pool)
    now = datetime.now(UTC)
    replayed = [
        command(
            tenant_id=tenant_id,
            email=f"rep{i}-{uuid.uuid4().hex[:8]}@example.com",
            at=now,
            record_only=True,
        )
        for i in range(2)
    ]
    live = command(tenant_id=tenant_id, email=f"live-{uuid.uuid4().hex[:8]}@example.com", at=now)
    got = await asyncio.gather(*(claim_of(ledger, c, now) for c in [*replayed, live]))
    assert all(isinstance(g, Claimed) for g in got)
    assert ledger.claim_statements == 1
    rows = [await ledger.get(c.command_id) for c in replayed]
    assert all(r is not None and r.record_only for r in rows)


async def test_a_deferred_command_due_again_is_reclaimed_from_a_round(
    pool: AsyncConnectionPool[Any], tenant_id: uuid.UUID
) -> None:
    """A deferred row now due takes more than an insert: from a round, that claim goes on its
    own (under the lock again) and is reclaimed; the others of the round are claimed."""
    ledger = PostgresLedger(pool)
    then = datetime.now(UTC) - timedelta(hours=1)
    deferred = command(tenant_id=tenant_id, email=f"d-{uuid.uuid4().hex[:8]}@example.com", at=then)
    assert isinstance(await claim_of(ledger, deferred, then), Claimed)
    assert await ledger.finish(
        deferred.command_id,
        status=LedgerStatus.DEFERRED,
        reason="quiet_hours",
        now=then,
        deferred_until=then + timedelta(minutes=30),
    )
    now = datetime.now(UTC)
    others = [
        command(tenant_id=tenant_id, email=f"o{i}-{uuid.uuid4().hex[:8]}@example.com", at=now)
        for i in range(3)
    ]
    got = await asyncio.gather(*(claim_of(ledger, c, now) for c in [*others, deferred]))
    assert all(isinstance(g, Claimed) for g in got)
    assert [g.reclaimed for g in got] == [False, False, False, True]
    row = await ledger.get(deferred.command_id)
    assert row is not None and row.status is LedgerStatus.CLAIMED and row.attempts == 2


async def test_rounds_of_two_workers_over_the_same_customers_never_deadlock(
    db_url: str, make_tenant: Any
) -> None:
    """Two workers (two pools) claim messages to the same two customers at the same moment,
    each round naming them in the other order. A round takes every contact's lock first, in
    the one order every claim takes them, so neither waits for the other in a cycle: every
    round is one statement that commits (none fails over to claims one by one, as a deadlock
    PostgreSQL broke would make it), and of each customer's two claims the later counts the
    earlier."""
    company = f"co_{uuid.uuid4().hex[:8]}"
    here, _ = await make_tenant(company_id=company)
    there, _ = await make_tenant(company_id=company)
    pools = [await open_pool(db_url, size=2) for _ in range(2)]
    try:
        ledgers = [PostgresLedger(p) for p in pools]
        for attempt in range(25):
            now = datetime.now(UTC)
            a, b = (f"{x}{attempt}-{uuid.uuid4().hex[:8]}@example.com" for x in "ab")
            mine = [command(tenant_id=here.id, email=e, at=now) for e in (a, b)]
            theirs = [command(tenant_id=there.id, email=e, at=now) for e in (b, a)]
            got = await asyncio.gather(
                *(claim_of(ledgers[0], c, now) for c in mine),
                *(claim_of(ledgers[1], c, now) for c in theirs),
            )
            assert all(isinstance(g, Claimed) for g in got), got
            facts = {id(c): g.facts for c, g in zip([*mine, *theirs], got, strict=True)}
            for email in (a, b):
                pair = [
                    facts[id(c)].recent_sends
                    for c in [*mine, *theirs]
                    if c.recipient.email == email
                ]
                assert sorted(pair) == [0, 1], (attempt, email, pair)
        assert [ledger.claim_statements for ledger in ledgers] == [25, 25]  # 1 an attempt
    finally:
        for p in pools:
            await p.close()


async def test_a_session_plans_the_claim_once_not_once_a_claim(
    db_url: str, tenant_id: uuid.UUID
) -> None:
    """Planning the claim cost the server ~0.9 ms against ~0.2-0.3 ms to run it, and
    PostgreSQL's plan cache kept choosing a new plan for every call (measured: 304 plans for
    300 claims). The claim functions use one generic plan a session: with the planner printing
    every plan it makes (`debug_print_plan`), a claim after the session's first plans only the
    statement that calls the function, alone or in a round (before: three plans a claim)."""
    plans: list[str] = []

    def on_notice(diag: Any) -> None:
        if (diag.message_primary or "").startswith("plan"):
            plans.append(diag.message_primary)

    async def configure(conn: Any) -> None:
        conn.add_notice_handler(on_notice)
        await conn.execute("SET debug_print_plan = on")
        await conn.execute("SET client_min_messages = log")

    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        db_url, min_size=1, max_size=1, kwargs={"autocommit": True}, configure=configure, open=False
    )
    await pool.open(wait=True)
    ledger = PostgresLedger(pool)

    def claims(n: int) -> Any:
        now = datetime.now(UTC)
        emails = [f"plan{i}-{uuid.uuid4().hex[:8]}@example.com" for i in range(n)]
        return asyncio.gather(
            *(claim_of(ledger, command(tenant_id=tenant_id, email=e, at=now), now) for e in emails)
        )

    async def alone() -> Any:  # the function a round's leftovers go through
        now = datetime.now(UTC)
        c = command(tenant_id=tenant_id, email=f"one-{uuid.uuid4().hex[:8]}@example.com", at=now)
        return await ledger._claim_one(
            claim_params(c, recipient=c.recipient.email, now=now, cap_since=now)
        )

    try:
        await alone()
        await claims(3)  # the session's first of each function
        plans.clear()
        for _ in range(6):
            assert isinstance(await alone(), Claimed)
            got = await claims(3)
            assert all(isinstance(g, Claimed) for g in got)
        assert ledger.claim_statements == 14  # one a call
        # 12 calls: at most the calling statement each, plus a few if an autovacuum ANALYZE
        # of the table lands meanwhile (it invalidates the cached plans). Planned a call, the
        # claims made 35 (the lock's plan turns generic after five calls, the claim's never).
        assert len(plans) <= 18, len(plans)
    finally:
        await pool.close()


async def test_the_claim_function_outlives_a_widened_column(
    db_url: str, tenant_id: uuid.UUID
) -> None:
    """A later migration may widen a column the claim returns (varchar → text, integer →
    bigint); the function casts its row to the types it declares, so claims go on, in this
    code and in workers still running it while the migration lands (in a transaction rolled
    back: the schema is untouched after)."""
    now = datetime.now(UTC)
    c = command(tenant_id=tenant_id, email=f"wide-{uuid.uuid4().hex[:8]}@example.com", at=now)
    params = claim_params(c, recipient=c.recipient.email, now=now, cap_since=now)
    conn = await psycopg.AsyncConnection.connect(db_url)
    try:
        await conn.execute("ALTER TABLE job_executions ALTER COLUMN recipient TYPE text")
        await conn.execute("ALTER TABLE job_executions ALTER COLUMN attempts TYPE bigint")
        await conn.execute(CLAIM_FUNCTION_SQL)
        got = await (await conn.execute(CALL_CLAIM_SQL, params)).fetchone()
        assert got is not None and got[0] is True
        await conn.execute(CLAIM_MANY_FUNCTION_SQL)  # a round's too
        again = [
            command(
                tenant_id=tenant_id, email=f"wide{i}-{uuid.uuid4().hex[:8]}@example.com", at=now
            )
            for i in range(2)
        ]
        rows = orjson.dumps(
            [
                claim_params(a, recipient=a.recipient.email, now=now, cap_since=now) | {"idx": i}
                for i, a in enumerate(again)
            ]
        ).decode()
        got_many = await (await conn.execute(CALL_CLAIM_MANY_SQL, {"rows": rows})).fetchall()
        assert [(r[0], r[1]) for r in got_many] == [(0, True), (1, True)]
    finally:
        await conn.rollback()
        await conn.close()
