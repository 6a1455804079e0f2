"""The send ledger on PostgreSQL (`job_executions`), over a psycopg 3 async pool.

Every statement but the claim is one autocommitted round trip; the claim reads the
recipient's gate facts (suppression, recent sends) in its own statement, so the hot path is
two statements: claim, then finish.

Claims to one customer are serialised. Two claims at the same instant (two locations of a
company: different partitions, often different workers) would each read the facts before the
other's row exists, and both pass the caps. So a claim first takes a transaction lock per
contact of the customer (its address and number, within the company), then claims: its facts
are read after the lock, so they count any claim that held it before. The lock and the claim
go in one pipeline sync, so one round trip: PostgreSQL runs the statements up to a sync as one
implicit transaction (the lock is held until the claimed row is committed, and released with
it, or when a statement fails) and the claim's snapshot is taken after the lock is granted.
A claim that must do more than insert (reclaim a deferred row, or retry after racing an insert)
takes the lock again and does it in an explicit transaction. A replay's record-only claim sends
nothing and takes no lock. A claim waits at most LOCK_TIMEOUT for the lock (a contact
every claim shares, e.g. a demo address, queues them all): then it fails as PostgreSQL being
unavailable would, and is retried.

The gate facts also carry the consent the source recorded for the recipient on the channel
(`source_consent`, read here at decision time, so a consent change ingest stored before it
answered the source applies to the very next touch; `finish` keeps it with the decision), and
the consent of the lead's contact on the other channel (whether the customer's preference for
that channel can be honoured, `consent_refusal`).

The gate facts are per contact across the locations of one Shopmonkey company (one business,
one customer): a suppression recorded at any location of the company (or for every location)
and the recent sends of every location of the company count, so two locations of a company
never message one customer twice within the frequency-cap window.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from schemas.base import Channel
from schemas.events import TouchPointCommand
from services.common.domain.consent import ConsentRecord, from_evidence
from services.common.errors import InfrastructureError
from services.outbound.adapters import metrics
from services.outbound.adapters.pg_pool import connection
from services.outbound.domain.model import (
    CAP_STATUSES,
    AlreadyClaimed,
    Claimed,
    ClaimResult,
    GateFacts,
    LedgerRow,
    LedgerStatus,
)

#: A re-emitted deferred command may arrive this much before its time (clock skew between the
#: sequencer and us); the gate then decides again whether the window is open.
DEFER_SKEW = timedelta(seconds=60)

_ROW = (
    "j.command_id, j.tenant_id, j.lead_id, j.step_index, j.channel, j.status, j.claimed_at, "
    "j.recipient, j.reason, j.provider, j.provider_message_id, j.deferred_until, j.due_at, "
    "j.record_only, j.attempts, j.decided_at, j.campaign"
)
_CAP = ", ".join(f"'{s.value}'" for s in CAP_STATUSES)
#: The command's tenant and every other tenant of its company (once per statement).
_COMPANY = """
company AS (
    SELECT ARRAY(SELECT sib.id FROM tenants me
                   JOIN tenants sib ON sib.shopmonkey_company_id = me.shopmonkey_company_id
                  WHERE me.id = %(tenant_id)s) || %(tenant_id)s::uuid AS ids,
           coalesce(%(now)s::timestamptz, now()) AS now,
           (date_trunc('day', coalesce(%(now)s::timestamptz, now()) AT TIME ZONE tz.zone)
              AT TIME ZONE tz.zone) AS day_start
      FROM (SELECT coalesce((SELECT timezone FROM tenants WHERE id = %(tenant_id)s),
                            'UTC') AS zone) tz
)"""
_FACTS = f"""
    EXISTS (SELECT 1 FROM suppressions s
            WHERE s.channel = %(channel)s AND s.contact = %(recipient)s
              AND (s.tenant_id IS NULL OR s.tenant_id = ANY (company.ids))) AS suppressed,
    (SELECT count(*) FROM job_executions r
      WHERE r.tenant_id = ANY (company.ids) AND r.channel = %(channel)s
        AND r.recipient = %(recipient)s AND r.command_id <> %(command_id)s
        AND r.status IN ({_CAP})
        AND coalesce(r.decided_at, r.claimed_at) >= %(cap_since)s) AS recent,
    EXISTS (SELECT 1 FROM leads l
            WHERE l.lead_id = %(lead_id)s
              AND CASE WHEN %(channel)s = 'email' THEN l.email_opted_out
                       ELSE l.sms_opted_out END) AS lead_opted_out,
    (SELECT to_jsonb(c) - 'id' - 'company_id' - 'updated_at'
       FROM source_consent c JOIN tenants t ON t.shopmonkey_company_id = c.company_id
      WHERE t.id = %(tenant_id)s AND c.channel = %(channel)s AND c.contact = %(recipient)s)
      AS consent,
    (SELECT to_jsonb(c) - 'id' - 'company_id' - 'updated_at'
       FROM source_consent c JOIN tenants t ON t.shopmonkey_company_id = c.company_id
      WHERE t.id = %(tenant_id)s AND c.channel = %(other_channel)s
        AND c.contact = %(other_contact)s)
      AS other_consent,
    EXISTS (SELECT 1 FROM job_executions r
             WHERE r.tenant_id = ANY (company.ids) AND r.command_id <> %(command_id)s
               AND ((r.channel = %(channel)s AND r.recipient = %(recipient)s)
                    OR (r.channel = %(other_channel)s AND r.recipient = %(other_contact)s))
               AND r.status IN ({_CAP})
               AND coalesce(split_part(r.campaign, ':', 1), 'nurture')
                   <> coalesce(split_part(%(campaign)s, ':', 1), 'nurture')
               AND coalesce(r.decided_at, r.claimed_at) >= company.day_start)
      AS other_campaign_today,
    %(campaign)s::text = 'review' AND EXISTS (
        SELECT 1 FROM job_executions r
         WHERE r.tenant_id = ANY (company.ids) AND r.lead_id <> %(lead_id)s
           AND ((r.channel = %(channel)s AND r.recipient = %(recipient)s)
                OR (r.channel = %(other_channel)s AND r.recipient = %(other_contact)s))
           AND r.campaign = 'review' AND r.status IN ({_CAP})
           AND coalesce(r.decided_at, r.claimed_at) >= company.now - interval '90 days')
      AS review_recent
"""
CLAIM_SQL = f"""
WITH {_COMPANY}, ins AS (
    INSERT INTO job_executions
        (command_id, tenant_id, lead_id, step_index, channel, template, recipient, status,
         record_only, attempts, due_at, claimed_at, campaign)
    VALUES (%(command_id)s, %(tenant_id)s, %(lead_id)s, %(step_index)s, %(channel)s,
            %(template)s, %(recipient)s, 'claimed', %(record_only)s, 1, %(due_at)s, %(now)s,
            %(campaign)s)
    ON CONFLICT (command_id) DO NOTHING
    RETURNING 1
)
SELECT EXISTS (SELECT 1 FROM ins) AS claimed, {_FACTS}, {_ROW}
FROM company LEFT JOIN job_executions j ON j.command_id = %(command_id)s
"""
FACTS_SQL = f"WITH {_COMPANY} SELECT {_FACTS} FROM company"
LOCK_TIMEOUT = "5s"
#: `set_config(..., true)`, not SET LOCAL: the statements of one pipeline sync are a transaction
#: but not a transaction block, and SET LOCAL would log a warning on every claim.
LOCK_TIMEOUT_SQL = f"SELECT set_config('lock_timeout', '{LOCK_TIMEOUT}', true)"
#: One lock per contact of the customer within the company (taken in a fixed order: two
#: claims never wait for each other in a cycle); released when the claim commits.
LOCK_CONTACTS_SQL = """
SELECT pg_advisory_xact_lock(k) FROM (
    SELECT DISTINCT hashtextextended(
               coalesce(t.shopmonkey_company_id, %(tenant_id)s::text) || '|' || c, 0) AS k
      FROM unnest(%(contacts)s::text[]) c
      LEFT JOIN tenants t ON t.id = %(tenant_id)s
     ORDER BY k) keys
"""
RECLAIM_SQL = """
UPDATE job_executions
   SET status = 'claimed', claimed_at = %(now)s, attempts = attempts + 1, reason = NULL,
       decided_at = NULL, deferred_until = NULL, record_only = %(record_only)s,
       recipient = %(recipient)s, due_at = %(due_at)s
 WHERE command_id = %(command_id)s AND status = 'deferred' AND deferred_until <= %(due_by)s
RETURNING 1
"""
GET_SQL = f"SELECT {_ROW} FROM job_executions j WHERE j.command_id = %(command_id)s"
HEARTBEAT_SQL = """
UPDATE job_executions SET claimed_at = %(now)s
 WHERE command_id = %(command_id)s AND status = 'claimed'
"""
TAKE_OVER_SQL = """
UPDATE job_executions SET claimed_at = %(now)s, attempts = attempts + 1
 WHERE command_id = %(command_id)s AND status = 'claimed' AND claimed_at = %(seen)s
RETURNING 1
"""
FINISH_SQL = """
UPDATE job_executions
   SET status = %(status)s, reason = %(reason)s, decided_at = %(now)s,
       provider = coalesce(%(provider)s, provider),
       provider_message_id = coalesce(%(provider_message_id)s, provider_message_id),
       deferred_until = %(deferred_until)s, consent = %(consent)s
 WHERE command_id = %(command_id)s AND status = 'claimed'
   AND (%(only_if)s::timestamptz IS NULL OR claimed_at = %(only_if)s::timestamptz)
RETURNING 1
"""
STALE_SQL = f"""
SELECT {_ROW} FROM job_executions j
 WHERE j.status = 'claimed' AND j.claimed_at < %(older_than)s
 ORDER BY j.claimed_at LIMIT %(limit)s
"""
SUPPRESS_SQL = """
INSERT INTO suppressions (tenant_id, channel, contact, reason, source)
VALUES (%(tenant_id)s, %(channel)s, %(contact)s, %(reason)s, %(source)s)
ON CONFLICT (tenant_id, channel, contact) DO NOTHING
"""


def _row(values: Sequence[Any]) -> LedgerRow:
    (cid, tid, lid, step, channel, status, claimed_at, recipient, reason, provider, pmid) = values[
        :11
    ]
    deferred_until, due_at, record_only, attempts, decided_at, campaign = values[11:17]
    return LedgerRow(
        command_id=cid,
        tenant_id=tid,
        lead_id=lid,
        step_index=step,
        channel=Channel(channel),
        status=LedgerStatus(status),
        claimed_at=claimed_at,
        recipient=recipient,
        reason=reason,
        provider=provider,
        provider_message_id=pmid,
        deferred_until=deferred_until,
        due_at=due_at,
        record_only=record_only,
        attempts=attempts,
        decided_at=decided_at,
        campaign=campaign,
    )


#: Columns of `_FACTS`: suppressed, recent, lead_opted_out, consent, other_consent,
#: other_campaign_today, review_recent.
FACT_COLUMNS = 7


#: Where the existing row's columns start in a CLAIM_SQL result (after claimed and the facts).
_ROW_AT = 1 + FACT_COLUMNS


def _settled(got: Sequence[Any], now: datetime) -> ClaimResult | None:
    """The claim's result from its CLAIM_SQL row, or None when it takes more: the insert lost
    a race with one not yet visible (try again), or the row is a deferred command now due
    (reclaim it)."""
    if got[0]:
        return Claimed(_facts(got[1:_ROW_AT]))
    if got[_ROW_AT] is None:
        return None
    row = _row(got[_ROW_AT:])
    if (
        row.status is LedgerStatus.DEFERRED
        and row.deferred_until is not None
        and row.deferred_until <= now + DEFER_SKEW
    ):
        return None
    return AlreadyClaimed(row)


def _other_channel(channel: Channel) -> str:
    return (Channel.SMS if channel is Channel.EMAIL else Channel.EMAIL).value


def _facts(values: Sequence[Any]) -> GateFacts:
    suppressed, recent, lead_opted_out, consent, other, campaign_today, review = values[
        :FACT_COLUMNS
    ]
    return GateFacts(
        suppressed=bool(suppressed),
        recent_sends=int(recent),
        lead_opted_out=bool(lead_opted_out),
        consent=from_evidence(consent) if consent else None,
        other_consent=from_evidence(other) if other else None,
        other_campaign_today=bool(campaign_today),
        review_recent=bool(review),
    )


class PostgresLedger:
    """`Ledger` over a psycopg pool the composition root opens and closes."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        #: When a list, every claim's latency (seconds) is appended (the benchmark's p99).
        self.claim_samples: list[float] | None = None

    async def _one(self, sql: str, params: dict[str, Any]) -> tuple[Any, ...] | None:
        async with connection(self._pool) as conn:
            cur = await conn.execute(sql, params)
            return await cur.fetchone()

    async def claim(
        self,
        command: TouchPointCommand,
        *,
        recipient: str | None,
        now: datetime,
        cap_since: datetime,
        other_contact: str | None = None,
    ) -> ClaimResult:
        params = {
            "command_id": command.command_id,
            "tenant_id": command.tenant_id,
            "lead_id": command.lead_id,
            "step_index": command.step_index,
            "channel": command.channel.value,
            "template": command.template[:100],
            "recipient": recipient[:320] if recipient else None,
            "other_channel": _other_channel(command.channel),
            "other_contact": other_contact,
            "record_only": command.record_only,
            "due_at": command.due_at,
            "now": now,
            "cap_since": cap_since,
            "campaign": command.campaign,
        }
        contacts = [c for c in (params["recipient"], other_contact) if c]
        lock = {"tenant_id": command.tenant_id, "contacts": contacts}
        started = time.perf_counter()
        try:
            async with connection(self._pool) as conn:
                if command.record_only or not contacts:
                    return await self._claim(conn, params, now)
                # One sync, sent when the block ends: lock, claim, commit (implicitly: the
                # pool's connections autocommit, so no BEGIN keeps the lock past the sync).
                # Its results are read after it (a fetch inside the block would cost a round
                # trip of its own, holding the lock meanwhile).
                assert conn.autocommit
                async with conn.pipeline():
                    await conn.execute(LOCK_TIMEOUT_SQL)
                    await conn.execute(LOCK_CONTACTS_SQL, lock)
                    cur = await conn.execute(CLAIM_SQL, params)
                got = await cur.fetchone()
                assert got is not None
                settled = _settled(got, now)
                if settled is not None:
                    return settled
                # a race to retry or a deferred row to reclaim: under the lock again
                async with conn.pipeline(), conn.transaction():
                    await conn.execute(LOCK_TIMEOUT_SQL)
                    await conn.execute(LOCK_CONTACTS_SQL, lock)
                    return await self._claim(conn, params, now)
        finally:
            elapsed = time.perf_counter() - started
            metrics.LEDGER_CLAIM_SECONDS.observe(elapsed)
            if self.claim_samples is not None:
                self.claim_samples.append(elapsed)

    async def _claim(
        self, conn: AsyncConnection[Any], params: dict[str, Any], now: datetime
    ) -> ClaimResult:
        for _ in range(3):
            got = await (await conn.execute(CLAIM_SQL, params)).fetchone()
            assert got is not None
            settled = _settled(got, now)
            if settled is not None:
                return settled
            if got[_ROW_AT] is None:  # lost a race with an insert not yet visible: again
                continue
            row = _row(got[_ROW_AT:])  # deferred, and due: ours again
            due_by = params | {"due_by": now + DEFER_SKEW}
            if await (await conn.execute(RECLAIM_SQL, due_by)).fetchone() is not None:
                return Claimed(_facts(got[1:_ROW_AT]), reclaimed=True)
            again = await (await conn.execute(GET_SQL, params)).fetchone()
            return AlreadyClaimed(_row(again) if again is not None else row)
        raise InfrastructureError(f"claim of {params['command_id']} kept racing")

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
    ) -> GateFacts:
        got = await self._one(
            FACTS_SQL,
            {
                "command_id": command_id,
                "tenant_id": tenant_id,
                "lead_id": lead_id,
                "channel": channel.value,
                "recipient": recipient,
                "other_channel": _other_channel(channel),
                "other_contact": other_contact,
                "cap_since": cap_since,
                "campaign": campaign,
                "now": now,
            },
        )
        assert got is not None
        return _facts(got)

    async def get(self, command_id: uuid.UUID) -> LedgerRow | None:
        got = await self._one(GET_SQL, {"command_id": command_id})
        return _row(got) if got else None

    async def heartbeat(self, command_id: uuid.UUID, *, now: datetime) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(HEARTBEAT_SQL, {"command_id": command_id, "now": now})

    async def take_over(
        self, command_id: uuid.UUID, *, seen_claimed_at: datetime, now: datetime
    ) -> bool:
        got = await self._one(
            TAKE_OVER_SQL, {"command_id": command_id, "seen": seen_claimed_at, "now": now}
        )
        return got is not None

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
        got = await self._one(
            FINISH_SQL,
            {
                "command_id": command_id,
                "status": status.value,
                "reason": reason,
                "now": now,
                "provider": provider,
                "provider_message_id": provider_message_id[:100] if provider_message_id else None,
                "deferred_until": deferred_until,
                "only_if": only_if_claimed_at,
                "consent": Jsonb(consent.evidence()) if consent else None,
            },
        )
        return got is not None

    async def stale_claims(self, *, older_than: datetime, limit: int = 100) -> list[LedgerRow]:
        async with connection(self._pool) as conn:
            cur = await conn.execute(STALE_SQL, {"older_than": older_than, "limit": limit})
            return [_row(r) for r in await cur.fetchall()]

    async def suppress(
        self, *, tenant_id: uuid.UUID, channel: Channel, contact: str, reason: str, source: str
    ) -> None:
        async with connection(self._pool) as conn:
            await conn.execute(
                SUPPRESS_SQL,
                {
                    "tenant_id": tenant_id,
                    "channel": channel.value,
                    "contact": contact,
                    "reason": reason[:50],
                    "source": source[:50],
                },
            )

    async def ping(self) -> bool:
        try:
            async with connection(self._pool) as conn:
                await conn.execute("SELECT 1")
            return True
        except InfrastructureError:
            return False
