"""What ingest commits before it answers a webhook or publishes a poll, on one connection in
one group commit: the consent a record carries (`source_consent`, `consent_store_pg`) and a
customer's visit of a location (`customer_locations`, `customer_locations_pg`).

The calls of both kinds waiting at the same moment share a round (`services.common.rounds`):
one statement, one commit, where two stores of their own wrote two. A visit may carry its
order's consent rows (one `Call` for both), so a webhook waits for one round, not
two in turn, even when nothing else is waiting. Nothing waits for the other
kind: with nothing in flight a call goes at once, alone. Under bench/ingest's load a round
carries about nine calls, of both kinds; halving the statements measured within that bench's
noise (bench/ingest/README.md).

One round is one statement when no contact is twice in it, nearly always: the consent upsert
as a data-modifying CTE the visits' upsert reads first (its result is an InitPlan, evaluated
before the first visit row), so the rows are locked consent first, then customers, each in the
order of its key. Every round of every process locks in that order and none waits on another
in a cycle (two processes committing rounds over the same customers in opposite orders
deadlocked, and PostgreSQL failed a whole round). A contact twice in a round goes in later
statements of the same transaction, in arrival order (`consent_store_pg.rounds`: `merge` is
not associative), the visits after them.

A row PostgreSQL refuses fails only its own call: the round is written again one call at a
time. A lost connection fails the round (`Unavailable`) and the next one reconnects.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.rounds import Rounds, Waiting
from services.ingest.adapters.consent_store_pg import UPSERT, Row, rounds
from services.ingest.adapters.customer_locations_pg import VISIT, Visit
from services.ingest.adapters.pg_connection import OwnConnection
from services.ingest.errors import Unavailable

#: At most this many calls share a round.
MAX_ROUND = 256

Locations = frozenset[uuid.UUID]

#: Consent and visits in one statement: the consent upsert runs to completion before the first
#: visit row (an uncorrelated scalar subquery is an InitPlan), so locks go consent, then
#: customers.
_ORDER = " ORDER BY r.company_id"
if VISIT.count(_ORDER) != 1:  # the gate below must not silently go missing
    raise RuntimeError("customer_locations_pg.VISIT: expected one ORDER BY r.company_id")
KEEP_AND_VISIT = f"WITH kept AS ({UPSERT} RETURNING 1) " + VISIT.replace(
    _ORDER, " WHERE (SELECT count(*) FROM kept) >= 0" + _ORDER
)


@dataclass(frozen=True, slots=True)
class Call:
    """One caller's writes, committed together: consent rows (`consent_store_pg.consent_row`),
    a visit, or both (an order's visit and its customer's consent)."""

    rows: list[Row]
    visit: Visit | None = None


class IngestWrites:
    """The writer both stores of a process share (`PostgresConsentStore`,
    `PostgresCustomerLocations`). Close it with `close()`: the round in flight finishes (at
    most the timeout) and later calls are refused."""

    def __init__(
        self, engine: AsyncEngine, *, max_round: int = MAX_ROUND, timeout: float = 10.0
    ) -> None:
        self._conn = OwnConnection(engine, timeout=timeout)
        self._rounds: Rounds[Call, Locations | None] = Rounds(
            self._write, key=None, max_size=max_round, name="ingest-writes"
        )
        self._timeout = timeout
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        #: transactions committed, and the consent calls and visits they carried (tests)
        self.commits = 0
        self.consent_calls = 0
        self.visits = 0

    async def keep(self, rows: list[Row]) -> None:
        """Commit consent rows (`ConsentStore.record`)."""
        if self._closed:
            raise Unavailable("consent store: closed")
        await self._rounds.submit(Call(rows))

    async def visit(self, visit: Visit, consent: list[Row] | None = None) -> Locations:
        """Commit a visit, and `consent` rows with it, and answer the customer's locations
        (`CustomerLocations.visit`)."""
        if self._closed:
            raise Unavailable("customer locations: closed")
        found = await self._rounds.submit(Call(consent or [], visit))
        assert found is not None
        return found

    async def close(self) -> None:
        """Refuse later calls, let the round in flight finish (at most the timeout), then close
        the connection for good: a round still waiting after that fails (`Unavailable`)
        instead of opening another. Every caller waits for the one closing."""
        self._closed = True
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._rounds.idle()
        await self._conn.close(final=True)

    async def _write(self, round_: list[Waiting[Call, Locations | None]]) -> None:
        """Write a round and answer it; a failure raised here is every unanswered call's
        (`Rounds`)."""
        consent = rounds([row for call, _ in round_ for row in call.rows])
        customers: dict[tuple[str, str], dict[str, None]] = {}
        for call, _ in round_:
            if call.visit is not None:
                company_id, customer_id, tenant_id = call.visit
                customers.setdefault((company_id, customer_id), {})[str(tenant_id)] = None
        visits = [
            {"company_id": c, "customer_id": k, "tenant_ids": list(tenants)}
            for (c, k), tenants in customers.items()
        ]
        try:
            # encoded first: a value JSON cannot carry (a lone surrogate in an id) is refused
            # data, like a row PostgreSQL refuses, and fails only its own call
            consent_json, visits_json = [_json(rows) for rows in consent], _json(visits)
            conn = await self._conn.get()
            found = await _execute(conn, consent_json, visits_json if visits else None)
        except (psycopg.DataError, psycopg.IntegrityError, orjson.JSONEncodeError) as exc:
            if len(round_) == 1:
                raise Unavailable(f"{_what(round_)}: {exc.__class__.__name__}") from exc
            for one in round_:  # one call's data refused: the others must not fail with it
                await self._written_alone(one)
            return
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._conn.close()  # the next round opens a new one
            raise Unavailable(f"{_what(round_)}: {exc.__class__.__name__}") from exc
        except BaseException:
            await self._conn.close()  # cancelled mid-statement: its state is unknown
            raise
        self.commits += 1
        for call, done in round_:
            self.consent_calls += bool(call.rows)
            if call.visit is None:
                if not done.done():
                    done.set_result(None)
            else:
                self.visits += 1
                if not done.done():  # every row of the statement is returned
                    done.set_result(frozenset(found[call.visit[:2]]))

    async def _written_alone(self, one: Waiting[Call, Locations | None]) -> None:
        try:
            await self._write([one])
        except Unavailable as exc:
            if not one[1].done():
                one[1].set_exception(exc)


def _what(round_: list[Waiting[Call, Locations | None]]) -> str:
    """The stores a round wrote for, as its failure names them."""
    names = []
    if any(call.rows for call, _ in round_):
        names.append("consent store")
    if any(call.visit is not None for call, _ in round_):
        names.append("customer locations")
    return " and ".join(names)


def _json(rows: list[dict[str, Any]]) -> str:
    """One parameter for a statement's rows (`jsonb_to_recordset`), encoded by orjson."""
    return orjson.dumps(rows).decode()


async def _execute(
    conn: psycopg.AsyncConnection[Any], consent: list[str], visits: str | None
) -> dict[tuple[str, str], list[Any]]:
    """Write a round: its consent statements (`rounds`, each its rows as JSON) and its visits;
    the customers' rows as they now are."""
    if len(consent) > 1:  # a contact twice: in arrival order, one transaction, one round trip
        async with conn.pipeline(), conn.transaction():
            for rows in consent:
                await conn.execute(UPSERT, (rows,), prepare=True)
            if visits is None:
                return {}
            cursor = await conn.execute(VISIT, (visits,), prepare=True)
            answer = await cursor.fetchall()
    elif consent and visits is not None:
        cursor = await conn.execute(KEEP_AND_VISIT, (consent[0], visits), prepare=True)
        answer = await cursor.fetchall()
    elif visits is not None:
        cursor = await conn.execute(VISIT, (visits,), prepare=True)
        answer = await cursor.fetchall()
    elif consent:
        await conn.execute(UPSERT, (consent[0],), prepare=True)
        return {}
    else:
        return {}
    return {(c, k): tenants for c, k, tenants in answer}
