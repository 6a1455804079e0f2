"""The `Ledger` port's contract: what the handler and the sweeper rely on, run against the
in-memory fake (support.py, by tests/unit/outbound/test_outbound_ledger_fake.py) and against
PostgreSQL (adapters/ledger_pg.py, by tests/integration/outbound/test_outbound_ledger_pg.py),
so the fake the unit tests use cannot drift from the real ledger.

A test module subclasses `LedgerContract` and provides the fixtures `ledger` (the ledger under
test), `tenant_id` (a tenant it may write rows for), `suppress_globally` (suppresses a
contact for every tenant, as ingest does on a STOP) and `opt_out_lead` (marks a lead of that
tenant opted out of a channel in the read model, as the projection does). Every test uses
fresh command ids and contacts, so the PostgreSQL variant may share its database with other
tests.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.base import Channel
from services.outbound.domain.model import AlreadyClaimed, Claimed, GateFacts, LedgerStatus
from services.outbound.ports import Ledger
from tests.unit.outbound.support import command

NOW = datetime.now(UTC).replace(microsecond=0)
#: Claims this old are older than anything other tests leave in a shared database.
LONG_AGO = NOW - timedelta(days=3650)
SuppressGlobally = Callable[[Channel, str], Awaitable[None]]
OptOutLead = Callable[[uuid.UUID, Channel], Awaitable[None]]


def _contact() -> str:
    return f"c{uuid.uuid4().hex[:8]}@example.com"


class LedgerContract:
    async def test_claim_once_then_the_row_answers(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
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

    async def test_concurrent_claims_have_exactly_one_winner(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        cmd = command(tenant_id=tenant_id, at=NOW)
        results = await asyncio.gather(
            *(
                ledger.claim(cmd, recipient="sam@example.com", now=NOW, cap_since=NOW)
                for _ in range(16)
            )
        )
        assert sum(isinstance(r, Claimed) for r in results) == 1

    async def test_every_final_status_is_recorded_once(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        later = NOW + timedelta(minutes=1)
        for status in (s for s in LedgerStatus if s is not LedgerStatus.CLAIMED):
            cmd = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
            await ledger.claim(cmd, recipient=_contact(), now=NOW, cap_since=NOW)
            until = NOW + timedelta(hours=1) if status is LedgerStatus.DEFERRED else None
            sid = f"SM{status.value}-{uuid.uuid4().hex}"  # unique: the database is shared
            assert await ledger.finish(
                cmd.command_id,
                status=status,
                reason=f"because_{status.value}",
                now=later,
                provider="twilio",
                provider_message_id=sid,
                deferred_until=until,
            )
            row = await ledger.get(cmd.command_id)
            assert row is not None
            assert (row.status, row.reason, row.decided_at, row.claimed_at) == (
                status,
                f"because_{status.value}",
                later,
                NOW,
            )
            assert (row.provider, row.provider_message_id, row.deferred_until) == (
                "twilio",
                sid,
                until,
            )
            assert not await ledger.finish(  # decided once: a late second decision is refused
                cmd.command_id, status=LedgerStatus.FAILED, reason="late", now=later
            )
            assert await ledger.get(cmd.command_id) == row

    async def test_deferred_row_is_reclaimed_only_once_due(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
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

    async def test_reclaim_takes_the_re_emitted_command(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        """A deferred command comes back (up to a minute early, clock skew) as it is now: the
        row takes its recipient, due time and record_only flag, and forgets the deferral."""
        cmd = command(tenant_id=tenant_id, at=NOW)
        await ledger.claim(cmd, recipient=_contact(), now=NOW, cap_since=NOW)
        until = NOW + timedelta(hours=2)
        await ledger.finish(
            cmd.command_id,
            status=LedgerStatus.DEFERRED,
            reason="outside_send_window",
            now=NOW,
            deferred_until=until,
        )
        back = cmd.model_copy(update={"due_at": until, "record_only": True})
        contact, at = _contact(), until - timedelta(seconds=30)
        claim = await ledger.claim(back, recipient=contact, now=at, cap_since=NOW)
        assert isinstance(claim, Claimed) and claim.reclaimed
        row = await ledger.get(cmd.command_id)
        assert row is not None
        assert (row.status, row.claimed_at, row.recipient, row.due_at, row.record_only) == (
            LedgerStatus.CLAIMED,
            at,
            contact,
            until,
            True,
        )
        assert (row.reason, row.decided_at, row.deferred_until, row.attempts) == (
            None,
            None,
            None,
            2,
        )

    async def test_gate_facts_suppression_and_frequency(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        contact = _contact()
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
        assert (
            claim.facts.recent_sends == 3 and not claim.facts.suppressed
        )  # sent, unknown, claimed
        await ledger.suppress(
            tenant_id=tenant_id, channel=Channel.EMAIL, contact=contact, reason="unsub", source="t"
        )
        await ledger.suppress(  # idempotent
            tenant_id=tenant_id, channel=Channel.EMAIL, contact=contact, reason="unsub", source="t"
        )
        facts = await ledger.facts(
            command_id=probe.command_id,
            tenant_id=tenant_id,
            lead_id=probe.lead_id,
            channel=Channel.EMAIL,
            recipient=contact,
            cap_since=since,
        )
        assert facts.suppressed
        sms = await ledger.facts(
            command_id=probe.command_id,
            tenant_id=tenant_id,
            lead_id=probe.lead_id,
            channel=Channel.SMS,
            recipient=contact,
            cap_since=since,
        )
        assert not sms.suppressed and sms.recent_sends == 0

    async def test_another_campaign_today_counts_either_contact_and_the_locations_day(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        """The frequency cap across campaigns (gate `campaign_cap`): a message of another
        campaign (the nurture plan is one) to this customer's address or number since the
        start of the location's day (America/New_York, the tenants' default) counts; the same
        campaign, or yesterday's, does not."""
        email, phone = _contact(), f"+1202555{uuid.uuid4().int % 10_000:04d}"
        zone = ZoneInfo("America/New_York")
        noon = datetime.combine(NOW.astimezone(zone).date(), time(12), tzinfo=zone)
        midnight = noon - timedelta(hours=12)
        since = noon - timedelta(hours=24)

        async def sent(at: datetime, campaign: str | None, channel: Channel) -> None:
            c = command(tenant_id=tenant_id, channel=channel, campaign=campaign, at=at)
            to = email if channel is Channel.EMAIL else phone
            await ledger.claim(c, recipient=to, now=at, cap_since=since)
            await ledger.finish(c.command_id, status=LedgerStatus.SENT, reason="x", now=at)

        async def probe(campaign: str | None, at: datetime = noon) -> GateFacts:
            c = command(tenant_id=tenant_id, channel=Channel.SMS, campaign=campaign, at=at)
            claim = await ledger.claim(
                c, recipient=phone, now=at, cap_since=since, other_contact=email
            )
            assert isinstance(claim, Claimed)
            # a probe skipped is no message: it must not count for the next probe
            await ledger.finish(c.command_id, status=LedgerStatus.SKIPPED, reason="x", now=at)
            return claim.facts

        await sent(midnight - timedelta(minutes=1), "review", Channel.SMS)  # yesterday
        assert not (await probe("declined")).other_campaign_today
        await sent(midnight + timedelta(minutes=1), None, Channel.EMAIL)  # nurture, today
        assert (await probe("review")).other_campaign_today  # by the customer's address
        assert (await probe("appointment:a1@1")).other_campaign_today
        assert not (await probe(None)).other_campaign_today  # the same campaign
        assert not (await probe("review", noon + timedelta(days=1))).other_campaign_today

    async def test_a_review_request_sees_another_orders_request_within_90_days(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        email = _contact()
        first = command(tenant_id=tenant_id, campaign="review", at=NOW - timedelta(days=30))
        await ledger.claim(first, recipient=email, now=first.due_at, cap_since=NOW)
        await ledger.finish(first.command_id, status=LedgerStatus.SENT, reason="x", now=NOW)

        async def review_recent(lead_id: uuid.UUID, step: int, campaign: str) -> bool:
            c = command(tenant_id=tenant_id, lead_id=lead_id, step=step, campaign=campaign, at=NOW)
            claim = await ledger.claim(c, recipient=email, now=NOW, cap_since=NOW)
            assert isinstance(claim, Claimed)
            await ledger.finish(c.command_id, status=LedgerStatus.SKIPPED, reason="x", now=NOW)
            return claim.facts.review_recent

        assert await review_recent(uuid.uuid4(), 0, "review")  # another order's request
        assert not await review_recent(first.lead_id, 1, "review")  # its own reminder
        assert not await review_recent(uuid.uuid4(), 0, "declined")  # not a review request
        later = command(tenant_id=tenant_id, campaign="review", at=NOW + timedelta(days=91))
        claim = await ledger.claim(
            later, recipient=email, now=NOW + timedelta(days=91), cap_since=NOW
        )
        assert isinstance(claim, Claimed) and not claim.facts.review_recent

    async def test_frequency_counts_this_tenant_and_recipient_by_decision_time(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        contact, since = _contact(), NOW - timedelta(hours=24)
        # claimed two days ago, sent just now: inside the window
        late = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
        await ledger.claim(late, recipient=contact, now=NOW - timedelta(days=2), cap_since=since)
        await ledger.finish(late.command_id, status=LedgerStatus.SENT, reason="x", now=NOW)
        elsewhere = command(tenant_id=uuid.uuid4(), lead_id=uuid.uuid4(), at=NOW)
        await ledger.claim(elsewhere, recipient=contact, now=NOW, cap_since=since)
        someone_else = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=NOW)
        await ledger.claim(someone_else, recipient=_contact(), now=NOW, cap_since=since)

        def facts(command_id: uuid.UUID, recipient: str | None) -> Awaitable[GateFacts]:
            return ledger.facts(
                command_id=command_id,
                tenant_id=tenant_id,
                lead_id=uuid.uuid4(),
                channel=Channel.EMAIL,
                recipient=recipient,
                cap_since=since,
            )

        assert (await facts(uuid.uuid4(), contact)).recent_sends == 1  # `late` alone
        assert (await facts(late.command_id, contact)).recent_sends == 0  # never itself
        assert await facts(uuid.uuid4(), None) == GateFacts()  # no address: nothing to count

    async def test_global_suppression_applies_to_every_tenant(
        self, ledger: Ledger, tenant_id: uuid.UUID, suppress_globally: SuppressGlobally
    ) -> None:
        phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
        await suppress_globally(Channel.SMS, phone)
        cmd = command(tenant_id=tenant_id, channel=Channel.SMS, phone=phone, at=NOW)
        claim = await ledger.claim(cmd, recipient=phone, now=NOW, cap_since=NOW)
        assert isinstance(claim, Claimed) and claim.facts.suppressed

    async def test_gate_facts_say_when_the_lead_opted_out_of_the_channel(
        self, ledger: Ledger, tenant_id: uuid.UUID, opt_out_lead: OptOutLead
    ) -> None:
        cmd = command(tenant_id=tenant_id, channel=Channel.SMS, at=NOW)
        await opt_out_lead(cmd.lead_id, Channel.SMS)
        claim = await ledger.claim(cmd, recipient=_contact(), now=NOW, cap_since=NOW)
        assert isinstance(claim, Claimed) and claim.facts.lead_opted_out

        def facts(lead_id: uuid.UUID, channel: Channel) -> Awaitable[GateFacts]:
            return ledger.facts(
                command_id=cmd.command_id,
                tenant_id=tenant_id,
                lead_id=lead_id,
                channel=channel,
                recipient=_contact(),
                cap_since=NOW,
            )

        assert (await facts(cmd.lead_id, Channel.SMS)).lead_opted_out
        assert not (await facts(cmd.lead_id, Channel.EMAIL)).lead_opted_out  # SMS only
        assert not (await facts(uuid.uuid4(), Channel.SMS)).lead_opted_out  # another lead

    async def test_tenant_suppression_stays_with_its_tenant(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        contact = _contact()
        await ledger.suppress(
            tenant_id=tenant_id, channel=Channel.EMAIL, contact=contact, reason="unsub", source="t"
        )
        other = command(tenant_id=uuid.uuid4(), at=NOW)
        claim = await ledger.claim(other, recipient=contact, now=NOW, cap_since=NOW)
        assert isinstance(claim, Claimed) and not claim.facts.suppressed

    async def test_stale_claims_heartbeat_and_take_over(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
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

    async def test_take_over_counts_an_attempt_and_its_claim_can_finish(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        cmd = command(tenant_id=tenant_id, at=NOW)
        await ledger.claim(cmd, recipient=_contact(), now=NOW, cap_since=NOW)
        later = NOW + timedelta(minutes=5)
        assert await ledger.take_over(cmd.command_id, seen_claimed_at=NOW, now=later)
        row = await ledger.get(cmd.command_id)
        assert row is not None and (row.claimed_at, row.attempts) == (later, 2)
        assert await ledger.finish(
            cmd.command_id,
            status=LedgerStatus.SENT,
            reason="reconciled_sent",
            now=later,
            only_if_claimed_at=later,
        )

    async def test_stale_claims_are_oldest_first_and_limited(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        times = [LONG_AGO + timedelta(seconds=s) for s in (2, 0, 1)]
        ids = []
        for at in times:
            cmd = command(tenant_id=tenant_id, lead_id=uuid.uuid4(), at=at)
            await ledger.claim(cmd, recipient=_contact(), now=at, cap_since=at)
            ids.append(cmd.command_id)
        newest = ids[0]
        await ledger.finish(newest, status=LedgerStatus.SKIPPED, reason="x", now=NOW)
        rows = await ledger.stale_claims(older_than=LONG_AGO + timedelta(seconds=10), limit=10)
        assert [r.command_id for r in rows if r.command_id in ids] == [ids[1], ids[2]]
        first = await ledger.stale_claims(older_than=LONG_AGO + timedelta(seconds=10), limit=1)
        assert [r.command_id for r in first] == [ids[1]]
        for cid in ids[1:]:  # leave no stale claims behind for the sweepers of other tests
            await ledger.finish(cid, status=LedgerStatus.SKIPPED, reason="x", now=NOW)

    async def test_only_claims_are_refreshed_taken_or_finished(
        self, ledger: Ledger, tenant_id: uuid.UUID
    ) -> None:
        cmd = command(tenant_id=tenant_id, at=NOW)
        await ledger.claim(cmd, recipient=_contact(), now=NOW, cap_since=NOW)
        await ledger.finish(cmd.command_id, status=LedgerStatus.SKIPPED, reason="x", now=NOW)
        decided = await ledger.get(cmd.command_id)
        later = NOW + timedelta(minutes=5)
        await ledger.heartbeat(cmd.command_id, now=later)
        assert not await ledger.take_over(cmd.command_id, seen_claimed_at=NOW, now=later)
        assert await ledger.get(cmd.command_id) == decided
        unknown = uuid.uuid4()
        await ledger.heartbeat(unknown, now=later)
        assert not await ledger.take_over(unknown, seen_claimed_at=NOW, now=later)
        assert not await ledger.finish(
            unknown, status=LedgerStatus.SENT, reason="accepted", now=later
        )
        assert await ledger.get(unknown) is None
