"""`CustomerLocations` over PostgreSQL (`customer_locations`, migration 0016): one row a company
and customer, the locations (tenants) where the customer has had orders.

A visit is one upsert that adds the location and returns the row as it now is. ON CONFLICT DO
UPDATE locks the customer's row and builds on its latest committed version, so two visits of
one customer at once are serialised: the later one returns the earlier one's location too
(a plain read beside the write could miss it). The row is written even when the location is
already in it, for that lock and that answer.

Group commit (`services.common.rounds`): the visits waiting at the same moment go in one
statement on the store's own connection. Visits of one customer in a round are one row of it
(ON CONFLICT cannot touch a row twice a statement), answered alike; the rows go in the order of
their key, so rounds of two processes lock their customers in one order and never deadlock.
The visits this process has recorded are remembered (`known`, bounded), so an order's later
changes at a location already recorded need no write.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Any

import orjson
import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.rounds import Rounds, Waiting
from services.ingest.adapters.pg_connection import OwnConnection
from services.ingest.errors import Unavailable

#: At most this many visits share a statement.
MAX_ROUND = 256
#: Visits (company, customer, location) this process remembers having recorded.
KNOWN_VISITS = 100_000

Visit = tuple[str, str, uuid.UUID]

VISIT = (
    "INSERT INTO customer_locations AS c (company_id, customer_id, tenant_ids)"
    " SELECT r.company_id, r.customer_id, r.tenant_ids"
    " FROM jsonb_to_recordset(%s::jsonb)"
    " AS r(company_id text, customer_id text, tenant_ids uuid[])"
    " ORDER BY r.company_id, r.customer_id"
    " ON CONFLICT (company_id, customer_id) DO UPDATE SET"
    " tenant_ids = CASE WHEN excluded.tenant_ids <@ c.tenant_ids THEN c.tenant_ids"
    " ELSE ARRAY(SELECT DISTINCT t FROM unnest(c.tenant_ids || excluded.tenant_ids) AS t) END,"
    " updated_at = now()"
    " RETURNING c.company_id, c.customer_id, c.tenant_ids"
)


#: The locations where the lead read model has leads of each customer of one company, merged
#: into `customer_locations` (added, never removed): what migration 0016 seeded, again after a
#: rollout (orders the ingest of before took, or the projection had not yet written, then).
MERGE_FROM_LEADS = (
    "INSERT INTO customer_locations AS c (company_id, customer_id, tenant_ids)"
    " SELECT t.shopmonkey_company_id, l.customer_id, array_agg(DISTINCT l.tenant_id)"
    " FROM leads l JOIN tenants t ON t.id = l.tenant_id"
    " WHERE t.shopmonkey_company_id = %s AND l.customer_id IS NOT NULL"
    " GROUP BY t.shopmonkey_company_id, l.customer_id"
    " ORDER BY t.shopmonkey_company_id, l.customer_id"
    " ON CONFLICT (company_id, customer_id) DO UPDATE SET"
    " tenant_ids = ARRAY(SELECT DISTINCT t FROM unnest(c.tenant_ids || excluded.tenant_ids) AS t),"
    " updated_at = now()"
    " WHERE NOT excluded.tenant_ids <@ c.tenant_ids"
)


async def merge_from_leads(conninfo: str, company_ids: list[str]) -> AsyncIterator[tuple[str, int]]:
    """Merge each company's customers' locations from the lead read model (one committed
    statement a company); yields each company and how many customers gained a location."""
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        for company_id in company_ids:
            cursor = await conn.execute(MERGE_FROM_LEADS, (company_id,))
            yield company_id, cursor.rowcount


class PostgresCustomerLocations:
    """Close it with `close()`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_round: int = MAX_ROUND,
        known: int = KNOWN_VISITS,
        timeout: float = 10.0,
    ) -> None:
        self._conn = OwnConnection(engine, timeout=timeout)
        self._rounds: Rounds[Visit, frozenset[uuid.UUID]] = Rounds(
            self._write, key=None, max_size=max_round, name="customer-visits"
        )
        self._known: OrderedDict[Visit, None] = OrderedDict()
        self._known_size = known
        self._timeout = timeout
        self._closed = False
        #: statements written, and visits they carried (tests read them)
        self.statements = 0
        self.visits = 0

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        return (company_id, customer_id, tenant_id) in self._known

    async def visit(
        self, company_id: str, customer_id: str, tenant_id: uuid.UUID
    ) -> frozenset[uuid.UUID]:
        if self._closed:
            raise Unavailable("customer locations: closed")
        visit = (company_id, customer_id, tenant_id)
        tenants = await self._rounds.submit(visit)
        self._known[visit] = None
        self._known.move_to_end(visit)
        if len(self._known) > self._known_size:
            self._known.popitem(last=False)
        return tenants

    async def close(self) -> None:
        """Let the rounds in flight finish (at most the timeout), then close the connection."""
        self._closed = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout):
                await self._rounds.idle()
        await self._conn.close()

    async def _write(self, round_: list[Waiting[Visit, frozenset[uuid.UUID]]]) -> None:
        """Write a round and answer it; a failure raised here is every unanswered call's
        (`Rounds`)."""
        customers: dict[tuple[str, str], dict[str, None]] = {}
        for (company_id, customer_id, tenant_id), _ in round_:
            customers.setdefault((company_id, customer_id), {})[str(tenant_id)] = None
        rows = [
            {"company_id": c, "customer_id": k, "tenant_ids": list(tenants)}
            for (c, k), tenants in customers.items()
        ]
        try:
            conn = await self._conn.get()
            cursor = await conn.execute(VISIT, (orjson.dumps(rows).decode(),), prepare=True)
            found: dict[tuple[str, str], list[Any]] = {
                (c, k): tenants for c, k, tenants in await cursor.fetchall()
            }
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if len(round_) == 1:
                raise Unavailable(f"customer locations: {exc.__class__.__name__}") from exc
            for one in round_:  # one visit's data refused: the others must not fail with it
                await self._written_alone(one)
            return
        except (psycopg.Error, OSError, TimeoutError) as exc:
            await self._conn.close()  # the next round opens a new one
            raise Unavailable(f"customer locations: {exc.__class__.__name__}") from exc
        except BaseException:
            await self._conn.close()  # cancelled mid-statement: its state is unknown
            raise
        self.statements += 1
        self.visits += len(round_)
        for (company_id, customer_id, _), done in round_:
            if not done.done():  # every row of the statement is returned
                done.set_result(frozenset(found[(company_id, customer_id)]))

    async def _written_alone(self, one: Waiting[Visit, frozenset[uuid.UUID]]) -> None:
        try:
            await self._write([one])
        except Unavailable as exc:
            if not one[1].done():
                one[1].set_exception(exc)
