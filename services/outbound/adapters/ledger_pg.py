"""The send ledger on PostgreSQL (`job_executions`), over a psycopg 3 async pool.

Every statement is one autocommitted round trip; the claim reads the recipient's gate facts
(suppression, recent sends) in its own statement, so the hot path is two statements: claim,
then finish. Claims waiting at the same moment share one statement, and so do finishes
(group commit, `services/common/rounds.py`: with none in flight, a call goes at once; while
one is written, the next gather behind it). A round of claims was half the server time of its
claims one by one (one call, one commit) and, under load, a batch's claims no longer queue for
the pool's connections one statement each.

Claims to one customer are serialised. Two claims at the same instant (two locations of a
company: different partitions, often different workers) would each read the facts before the
other's row exists, and both pass the caps. So a claim first takes a transaction lock per
contact of the customer (its address and number, within the company), then claims: its facts
are read after the lock, so they count any claim that held it before.

The lock and the claim are one statement: `pg_temp.outbound_claim`, a PL/pgSQL function each
session of the pool gets as its connection opens (`define_claims`; a session of another pool,
the first time it claims), with `outbound_claim_many`, a round's (every contact's lock first, in
the same order, then each claim), from LOCK_CONTACTS_SQL and CLAIM_SQL below (the SQL is written
once, here, not in a migration that could drift from it). A VOLATILE function's statements each
take a new snapshot, so its claim reads the facts after the lock is granted; the lock is held
until the calling statement's transaction (autocommit: the statement) commits the claimed row,
or fails. A pipeline of three statements (timeout, lock, claim) cost outbound's event loop and
the server more than the claim's own work (bench/latency/README.md). A claim that must do more
than insert (reclaim a deferred row, or retry after racing an insert) takes the lock again and
does it in an explicit transaction. A replay's record-only claim sends nothing and takes no
lock. A claim waits at most LOCK_TIMEOUT for the lock (a contact every claim shares, e.g. a demo
address, queues them all): then it fails as PostgreSQL being unavailable would, and is retried.
A round waits at most ROUND_LOCK_TIMEOUT, then its claims go one by one beside the next rounds,
so only the claims to that contact wait LOCK_TIMEOUT.

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

import asyncio
import logging
import time
import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection, AsyncCursor
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from schemas.base import Channel
from schemas.events import TouchPointCommand
from services.common.domain.consent import ConsentRecord, from_evidence
from services.common.errors import InfrastructureError
from services.common.rounds import Rounds, Waiting, settle
from services.outbound.adapters import metrics
from services.outbound.adapters.pg_pool import LOCK_TIMEOUT, connection
from services.outbound.domain.model import (
    CAP_STATUSES,
    AlreadyClaimed,
    Claimed,
    ClaimResult,
    GateFacts,
    LedgerRow,
    LedgerStatus,
)

log = logging.getLogger(__name__)

#: A re-emitted deferred command may arrive this much before its time (clock skew between the
#: sequencer and us); the gate then decides again whether the window is open.
DEFER_SKEW = timedelta(seconds=60)

#: A ledger row's columns as `_row` reads them, with their types (the claim function's result).
_ROW_COLUMNS = (
    ("command_id", "uuid"),
    ("tenant_id", "uuid"),
    ("lead_id", "uuid"),
    ("step_index", "integer"),
    ("channel", "varchar"),
    ("status", "varchar"),
    ("claimed_at", "timestamptz"),
    ("recipient", "varchar"),
    ("reason", "text"),
    ("provider", "varchar"),
    ("provider_message_id", "varchar"),
    ("deferred_until", "timestamptz"),
    ("due_at", "timestamptz"),
    ("record_only", "boolean"),
    ("attempts", "integer"),
    ("decided_at", "timestamptz"),
    ("campaign", "varchar"),
)
_ROW = ", ".join(f"j.{name}" for name, _ in _ROW_COLUMNS)
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


def _claim_sql(row: str, lead: str = "") -> str:
    """The claim, selecting the ledger row's columns as `row` does (after `lead`, columns
    selected first)."""
    return f"""
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
SELECT {lead}EXISTS (SELECT 1 FROM ins) AS claimed, {_FACTS}, {row}
FROM company LEFT JOIN job_executions j ON j.command_id = %(command_id)s
"""


CLAIM_SQL = _claim_sql(_ROW)
FACTS_SQL = f"WITH {_COMPANY} SELECT {_FACTS} FROM company"
#: `set_config(..., true)`, not SET LOCAL: the statements of one pipeline sync are a transaction
#: but not a transaction block, and SET LOCAL would log a warning on every claim.
LOCK_TIMEOUT_SQL = f"SELECT set_config('lock_timeout', '{LOCK_TIMEOUT}', true)"


#: One lock per contact of the customer within the company (taken in a fixed order: two
#: claims never wait for each other in a cycle); released when the claim commits.
def _lock_sql(contacts: str, tenant: str) -> str:
    """The locks of the contacts `contacts` selects (column `c`, with their tenant's id
    `tenant`), in the one order every claim takes them."""
    return f"""
SELECT pg_advisory_xact_lock(k) FROM (
    SELECT DISTINCT hashtextextended(
               coalesce(t.shopmonkey_company_id, {tenant}::text) || '|' || c, 0) AS k
      FROM {contacts}
      LEFT JOIN tenants t ON t.id = {tenant}
     ORDER BY k) keys
"""


LOCK_CONTACTS_SQL = _lock_sql("unnest(%(contacts)s::text[]) c", "%(tenant_id)s")

#: The arguments of `pg_temp.outbound_claim`, in order, with their types: CLAIM_SQL's
#: parameters and the lock's contacts.
CLAIM_ARGS = (
    ("command_id", "uuid"),
    ("tenant_id", "uuid"),
    ("lead_id", "uuid"),
    ("step_index", "integer"),
    ("channel", "text"),
    ("template", "text"),
    ("recipient", "text"),
    ("other_channel", "text"),
    ("other_contact", "text"),
    ("record_only", "boolean"),
    ("due_at", "timestamptz"),
    ("now", "timestamptz"),
    ("cap_since", "timestamptz"),
    ("campaign", "text"),
    ("contacts", "text[]"),
)
#: CLAIM_SQL's columns: claimed, the facts (FACT_COLUMNS), then the row (_ROW).
_CLAIM_RESULT = (
    "claimed boolean, suppressed boolean, recent bigint, lead_opted_out boolean, "
    "consent jsonb, other_consent jsonb, other_campaign_today boolean, review_recent boolean, "
    + ", ".join(f"{name} {kind}" for name, kind in _ROW_COLUMNS)
)
#: The row's columns cast to the function's result types: a later migration that widens a
#: column (varchar → text, integer → bigint) must not make every claim fail (a result of
#: another type than declared is an error in PL/pgSQL), here or in a worker still running the
#: code before it.
_ROW_CAST = ", ".join(f"j.{name}::{kind}" for name, kind in _ROW_COLUMNS)


def _in_function(sql: str, prefix: str = "p_") -> str:
    """`sql`'s psycopg parameters as the function's arguments (`%(x)s` → `p_x`), or as the
    fields of a record (`prefix` "x.")."""
    for name, _ in CLAIM_ARGS:
        sql = sql.replace(f"%({name})s", f"{prefix}{name}")
    if "%(" in sql:
        raise AssertionError(f"a parameter of the claim is not an argument: {sql}")
    return sql


#: The lock, then the claim (a new snapshot: its facts count every claim that held the lock
#: before), in one statement; no lock when `contacts` is empty (a replay's record-only claim).
#: `use_column`: the result's column names are also variables in PL/pgSQL. One generic plan a
#: session (`plan_cache_mode`): left to choose, PostgreSQL's plan cache planned the claim anew
#: for every call (304 plans for 300 claims), ~0.9 ms of planning to ~0.2-0.3 ms of running;
#: forced, a claim took 1.24 instead of 2.07 ms alone, 0.45 instead of 1.33 ms in a round of
#: six (tests/integration/outbound/test_ledger_pg.py counts the plans a session makes).
CLAIM_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION pg_temp.outbound_claim(
    {", ".join(f"p_{name} {kind}" for name, kind in CLAIM_ARGS)})
RETURNS TABLE ({_CLAIM_RESULT})
LANGUAGE plpgsql VOLATILE
SET lock_timeout = '{LOCK_TIMEOUT}'
SET plan_cache_mode = force_generic_plan
AS $claim$
#variable_conflict use_column
BEGIN
    PERFORM {_in_function(LOCK_CONTACTS_SQL.strip().removeprefix("SELECT "))};
    RETURN QUERY {_in_function(_claim_sql(_ROW_CAST).strip())};
END
$claim$
"""
CALL_CLAIM_SQL = "SELECT * FROM pg_temp.outbound_claim({})".format(
    ", ".join(f"%({name})s::{kind}" for name, kind in CLAIM_ARGS)
)

#: At most this many claims share one statement (each takes a lock a contact, and a
#: transaction's locks beyond max_locks_per_transaction, 64 by default, take from what every
#: session shares; OUTBOUND_CONCURRENCY, 32 by default, bounds a process's claims anyway).
MAX_CLAIMS = 32
#: How long a round waits for a contact's lock before it goes claim by claim (those wait
#: LOCK_TIMEOUT): a lock held that long is no round's contention but someone's (an operator's
#: transaction, a contact every claim shares).
ROUND_LOCK_TIMEOUT = "1s"
_ROUND_LOCK = (
    _lock_sql(
        "jsonb_to_recordset(p_rows) AS r(tenant_id uuid, contacts text[])"
        " CROSS JOIN LATERAL unnest(r.contacts) c",
        "r.tenant_id",
    )
    .strip()
    .removeprefix("SELECT ")
)
#: A round of claims in one statement (group commit, `PostgresLedger.claim`): the locks of
#: every contact of the round first, in the one order every claim takes them (two claimers
#: never wait for each other in a cycle), then each claim in the round's order, each statement
#: with a new snapshot: a claim counts the claims before it in the round as it counts those
#: committed before it. One row a claim, `idx` its place in the round. It all commits, or
#: nothing does (then each claim goes on its own). Record-only claims take no lock: two
#: workers' rounds with the same record-only commands in opposite orders (a rebalance's
#: duplicate delivery) can wait for each other's insert; PostgreSQL breaks that after
#: deadlock_timeout, and those rounds go claim by claim.
CLAIM_MANY_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION pg_temp.outbound_claim_many(p_rows jsonb)
RETURNS TABLE (idx integer, {_CLAIM_RESULT})
LANGUAGE plpgsql VOLATILE
SET lock_timeout = '{ROUND_LOCK_TIMEOUT}'
SET plan_cache_mode = force_generic_plan
AS $claim$
#variable_conflict use_column
DECLARE
    x record;
BEGIN
    PERFORM {_ROUND_LOCK};
    FOR x IN SELECT * FROM jsonb_to_recordset(p_rows) AS r(
        idx integer, {", ".join(f"{name} {kind}" for name, kind in CLAIM_ARGS)})
        ORDER BY r.idx
    LOOP
        RETURN QUERY {_in_function(_claim_sql(_ROW_CAST, lead="x.idx, ").strip(), "x.")};
    END LOOP;
END
$claim$
"""
CALL_CLAIM_MANY_SQL = "SELECT * FROM pg_temp.outbound_claim_many(%(rows)s::jsonb)"

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
#: FINISH_SQL for a round of finishes in one statement (one JSON array: `jsonb_to_recordset`
#: makes the rows); the command ids it decided come back.
FINISH_MANY_SQL = """
UPDATE job_executions j
   SET status = r.status, reason = r.reason, decided_at = r.now,
       provider = coalesce(r.provider, j.provider),
       provider_message_id = coalesce(r.provider_message_id, j.provider_message_id),
       deferred_until = r.deferred_until, consent = r.consent
  FROM jsonb_to_recordset(%(rows)s::jsonb) AS r(
       command_id uuid, status text, reason text, now timestamptz, provider text,
       provider_message_id text, deferred_until timestamptz, only_if timestamptz, consent jsonb)
 WHERE j.command_id = r.command_id AND j.status = 'claimed'
   AND (r.only_if IS NULL OR j.claimed_at = r.only_if)
RETURNING j.command_id
"""
#: At most this many finishes share one statement.
MAX_FINISHES = 64
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


def claim_params(
    command: TouchPointCommand,
    *,
    recipient: str | None,
    now: datetime,
    cap_since: datetime,
    other_contact: str | None = None,
) -> dict[str, Any]:
    """CLAIM_SQL's parameters for `command`, and `contacts` (the lock's: none for a replay's
    record-only claim): CALL_CLAIM_SQL's."""
    recipient = recipient[:320] if recipient else None
    return {
        "command_id": command.command_id,
        "tenant_id": command.tenant_id,
        "lead_id": command.lead_id,
        "step_index": command.step_index,
        "channel": command.channel.value,
        "template": command.template[:100],
        "recipient": recipient,
        "other_channel": _other_channel(command.channel),
        "other_contact": other_contact,
        "record_only": command.record_only,
        "due_at": command.due_at,
        "now": now,
        "cap_since": cap_since,
        "campaign": command.campaign,
        "contacts": [] if command.record_only else [c for c in (recipient, other_contact) if c],
    }


#: The sessions that have the claim functions (a session is the connection's, whichever
#: ledger uses it).
_DEFINED: weakref.WeakSet[AsyncConnection[Any]] = weakref.WeakSet()


async def define_claims(conn: AsyncConnection[Any]) -> None:
    """The claim functions in this session (`pg_temp`), once. The outbound pool defines them
    as it opens each connection (`open_pool(session=…)`); a ledger on another pool defines them
    the first time a session claims. Defined on first claim, ~10 ms a connection of the
    server's CPU fell on the first commands after a start, together (bench/latency/README.md)."""
    if conn not in _DEFINED:
        await conn.execute(CLAIM_FUNCTION_SQL)
        await conn.execute(CLAIM_MANY_FUNCTION_SQL)
        _DEFINED.add(conn)


class PostgresLedger:
    """`Ledger` over a psycopg pool the composition root opens and closes."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        #: finishes in rounds (group commit), keyed by command
        self._finishes: Rounds[dict[str, Any], bool] = Rounds(
            self._finish_round,
            key=lambda row: row["command_id"],
            max_size=MAX_FINISHES,
            name="ledger-finish",
        )
        #: statements the finishes took (tests read it)
        self.finish_statements = 0
        #: claims in rounds too: each round one statement (its locks, its claims, one commit)
        self._claims: Rounds[dict[str, Any], ClaimResult] = Rounds(
            self._claim_round,
            key=lambda params: params["command_id"],
            max_size=MAX_CLAIMS,
            name="ledger-claim",
            skip_abandoned=True,  # a claim whose caller went away would be acted on by nobody
        )
        #: claims of rounds that go on their own, beside the next rounds
        self._alone: set[asyncio.Future[None]] = set()
        #: statements the claims took, a round's or one claim's first (tests read it)
        self.claim_statements = 0
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
        """Group commit, as `finish`: the claims waiting at that moment go in one statement
        (`_claim_round`); with none in flight a claim goes at once."""
        params = claim_params(
            command, recipient=recipient, now=now, cap_since=cap_since, other_contact=other_contact
        )
        started = time.perf_counter()
        try:
            return await self._claims.submit(params)
        finally:
            elapsed = time.perf_counter() - started
            metrics.LEDGER_CLAIM_SECONDS.observe(elapsed)
            if self.claim_samples is not None:
                self.claim_samples.append(elapsed)

    async def _call(
        self, conn: AsyncConnection[Any], sql: str, params: dict[str, Any]
    ) -> AsyncCursor[Any]:
        """A claim function's call on `conn` (autocommit: the call is its own transaction, so
        no BEGIN keeps a lock past it). A session found without the functions (something
        reset it behind the pool) gets them again, once."""
        assert conn.autocommit
        await define_claims(conn)
        try:
            return await conn.execute(sql, params)
        except psycopg.errors.UndefinedFunction:
            _DEFINED.discard(conn)
            await define_claims(conn)
            return await conn.execute(sql, params)

    async def _claim_round(self, round_: list[Waiting[dict[str, Any], ClaimResult]]) -> None:
        """One statement for the round (CLAIM_MANY_FUNCTION_SQL, a round of one too: it waits
        for a held lock ROUND_LOCK_TIMEOUT, not LOCK_TIMEOUT). A claim that takes more than
        an insert (a deferred row now due, a race with an insert not yet visible) then goes on
        its own, as does every claim of a round whose statement fails for any reason (data
        PostgreSQL refuses, a contact's lock not granted within ROUND_LOCK_TIMEOUT, an
        outage): each caller gets its own answer, a refused claim fails only its own call.
        Those go beside the next rounds, not before them: a contact whose lock is held holds
        up the claims to it, not every claim of the process.

        If the round committed but its answer was lost (the connection dropped), each of its
        claims finds its row claimed on its own, as a redelivered command would: the takeover
        reconciles it (services/outbound/service_layer/takeover.py). Never sent twice."""
        try:
            got = await self._claim_many([params for params, _ in round_])
        except Exception as exc:
            log.info("a round of %d claims failed (%s): one at a time", len(round_), exc)
        else:
            rest = []
            for (params, done), row in zip(round_, got, strict=True):
                try:
                    settled = _settled(row, params["now"])
                except Exception as exc:  # a row this code cannot read: that claim fails
                    if not done.done():
                        done.set_exception(exc)
                    continue
                if settled is None:
                    rest.append((params, done))
                elif not done.done():
                    done.set_result(settled)
            round_ = rest
        round_ = [(params, done) for params, done in round_ if not done.done()]
        for waiting in round_:
            alone = asyncio.ensure_future(self._claim_alone(waiting))
            self._alone.add(alone)
            alone.add_done_callback(self._alone.discard)

    async def _claim_alone(self, waiting: Waiting[dict[str, Any], ClaimResult]) -> None:
        """One claim on its own, answered as soon as it is done."""
        params, _ = waiting
        results = await asyncio.gather(self._claim_one(params), return_exceptions=True)
        settle([waiting], results)

    async def _claim_many(self, claims: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Each claim's CLAIM_SQL row (without `idx`), in the round's order."""
        rows = orjson.dumps([params | {"idx": i} for i, params in enumerate(claims)]).decode()
        self.claim_statements += 1
        async with connection(self._pool) as conn:
            got = await (await self._call(conn, CALL_CLAIM_MANY_SQL, {"rows": rows})).fetchall()
        if [row[0] for row in got] != list(range(len(claims))):
            raise InfrastructureError(
                f"a round of {len(claims)} claims answered rows {[row[0] for row in got]}"
            )
        return [row[1:] for row in got]

    async def _claim_one(self, params: dict[str, Any]) -> ClaimResult:
        now = params["now"]
        contacts = params["contacts"]
        self.claim_statements += 1
        async with connection(self._pool) as conn:
            cur = await self._call(conn, CALL_CLAIM_SQL, params)
            got = await cur.fetchone()
            assert got is not None
            settled = _settled(got, now)
            if settled is not None:
                return settled
            if not contacts:
                return await self._claim(conn, params, now)
            # a race to retry or a deferred row to reclaim: under the lock again
            lock = {"tenant_id": params["tenant_id"], "contacts": contacts}
            async with conn.pipeline(), conn.transaction():
                await conn.execute(LOCK_TIMEOUT_SQL)
                await conn.execute(LOCK_CONTACTS_SQL, lock)
                return await self._claim(conn, params, now)

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
        """Group commit: the finishes waiting at that moment go in one statement; with none in
        flight a finish goes at once (`rounds.Rounds`)."""
        return await self._finishes.submit(
            {
                "command_id": command_id,
                "status": status.value,
                "reason": reason,
                "now": now,
                "provider": provider,
                "provider_message_id": (provider_message_id[:100] if provider_message_id else None),
                "deferred_until": deferred_until,
                "only_if": only_if_claimed_at,
                "consent": consent.evidence() if consent else None,
            }
        )

    @property
    def max_finishes(self) -> int:
        """At most how many finishes share a statement."""
        return self._finishes.max_size

    @max_finishes.setter
    def max_finishes(self, value: int) -> None:
        self._finishes.max_size = value

    async def _finish_round(self, round_: list[Waiting[dict[str, Any], bool]]) -> None:
        """One statement for the round. If it fails for any reason (data PostgreSQL refuses,
        a row that cannot be encoded, a row lock not granted within the session's
        lock_timeout, an outage), each finish goes on its own, so each caller gets its own
        answer: a refused finish fails only its own call, a locked row holds only its own."""
        if len(round_) > 1:
            try:
                rows = orjson.dumps([row for row, _ in round_]).decode()
                self.finish_statements += 1
                async with connection(self._pool) as conn:
                    cur = await conn.execute(FINISH_MANY_SQL, {"rows": rows})
                    ids = {r[0] for r in await cur.fetchall()}
            except Exception as exc:
                log.info("a round of %d finishes failed (%s): one at a time", len(round_), exc)
            else:
                for row, done in round_:
                    if not done.done():
                        done.set_result(row["command_id"] in ids)
                return
        results = await asyncio.gather(
            *(self._finish_one(row) for row, _ in round_), return_exceptions=True
        )
        settle(round_, results)

    async def _finish_one(self, row: dict[str, Any]) -> bool:
        consent = row["consent"]
        self.finish_statements += 1
        got = await self._one(FINISH_SQL, row | {"consent": Jsonb(consent) if consent else None})
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
