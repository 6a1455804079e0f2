"""`CustomerLocations` over PostgreSQL (`customer_locations`, migration 0016): one row a company
and customer, the locations (tenants) where the customer has had orders.

A visit is one upsert that adds the location and returns the row as it now is. ON CONFLICT DO
UPDATE locks the customer's row and builds on its latest committed version, so two visits of
one customer at once are serialised: the later one returns the earlier one's location too
(a plain read beside the write could miss it). The row is written even when the location is
already in it, for that lock and that answer.

Group commit (`services.common.rounds`): the visits waiting at the same moment go in one
statement on the store's own connection; a customer at most once a round (ON CONFLICT cannot
touch one row twice in a statement), a second visit waits for the next round. The visits this
process has recorded are remembered (`known`, bounded), so an order's later changes at a
location already recorded need no write.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
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
    " SELECT r.company_id, r.customer_id, ARRAY[r.tenant_id]"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(company_id text, customer_id text, tenant_id uuid)"
    " ON CONFLICT (company_id, customer_id) DO UPDATE SET"
    " tenant_ids = CASE WHEN excluded.tenant_ids <@ c.tenant_ids THEN c.tenant_ids"
    " ELSE c.tenant_ids || excluded.tenant_ids END,"
    " updated_at = now()"
    " RETURNING c.company_id, c.customer_id, c.tenant_ids"
)


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
            self._write, key=lambda v: (v[0], v[1]), max_size=max_round, name="customer-visits"
        )
        self._known: OrderedDict[Visit, None] = OrderedDict()
        self._known_size = known
        #: statements written, and visits they carried (tests read them)
        self.statements = 0
        self.visits = 0

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        return (company_id, customer_id, tenant_id) in self._known

    async def visit(
        self, company_id: str, customer_id: str, tenant_id: uuid.UUID
    ) -> frozenset[uuid.UUID]:
        visit = (company_id, customer_id, tenant_id)
        tenants = await self._rounds.submit(visit)
        self._known[visit] = None
        self._known.move_to_end(visit)
        if len(self._known) > self._known_size:
            self._known.popitem(last=False)
        return tenants

    async def close(self) -> None:
        await self._conn.close()

    async def _write(self, round_: list[Waiting[Visit, frozenset[uuid.UUID]]]) -> None:
        rows = [{"company_id": c, "customer_id": k, "tenant_id": str(t)} for (c, k, t), _ in round_]
        try:
            conn = await self._conn.get()
            cursor = await conn.execute(VISIT, (orjson.dumps(rows).decode(),), prepare=True)
            found: dict[tuple[str, str], list[Any]] = {
                (c, k): tenants for c, k, tenants in await cursor.fetchall()
            }
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            if len(round_) > 1:  # one visit's data refused: the others must not fail with it
                for one in round_:
                    await self._write([one])
                return
            _fail(round_, Unavailable(f"customer locations: {exc.__class__.__name__}"))
            return
        except (psycopg.Error, OSError, TimeoutError) as exc:
            _fail(round_, Unavailable(f"customer locations: {exc.__class__.__name__}"))
            await self._conn.close()  # the next round opens a new one
            return
        except BaseException:
            await self._conn.close()  # cancelled mid-statement: its state is unknown
            raise
        self.statements += 1
        self.visits += len(round_)
        for visit, done in round_:
            if done.done():
                continue
            tenants = found.get((visit[0], visit[1]))
            if tenants is None:  # cannot happen: every row of the statement is returned
                done.set_exception(Unavailable("customer locations: a visit was not returned"))
            else:
                done.set_result(frozenset(tenants))


def _fail(round_: list[Waiting[Visit, frozenset[uuid.UUID]]], error: Exception) -> None:
    for _, done in round_:
        if not done.done():
            done.set_exception(error)
