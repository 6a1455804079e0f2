"""`CustomerLocations` over PostgreSQL (`customer_locations`, migration 0016): one row a company
and customer, the locations (tenants) where the customer has had orders.

A visit is one upsert that adds the location and returns the row as it now is. ON CONFLICT DO
UPDATE locks the customer's row and builds on its latest committed version, so two visits of
one customer at once are serialised: the later one returns the earlier one's location too
(a plain read beside the write could miss it). The row is written even when the location is
already in it, for that lock and that answer.

Group commit: the store writes through the process's `IngestWrites` (`ingest_writes_pg`), so
the visits waiting at the same moment, and the consent records waiting with them, go in one
statement; a visit may carry its order's consent records itself (one call, one commit).
Visits of one customer in a round are one row of it (ON CONFLICT cannot touch a row twice a
statement), answered alike; the rows go in the order of their key, so rounds of two processes
lock their customers in one order and never deadlock.
The visits this process has recorded are remembered (`known`, bounded), so an order's later
changes at a location already recorded need no write.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import psycopg

from services.common.domain.consent import ConsentRecord
from services.ingest.adapters.consent_store_pg import consent_row

if TYPE_CHECKING:
    from services.ingest.adapters.ingest_writes_pg import IngestWrites

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
    """On `writes`, shared with the process's consent store; `close()` closes it."""

    def __init__(self, writes: IngestWrites, *, known: int = KNOWN_VISITS) -> None:
        self._writes = writes
        self._known: OrderedDict[Visit, None] = OrderedDict()
        self._known_size = known

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        return (company_id, customer_id, tenant_id) in self._known

    async def visit(
        self,
        company_id: str,
        customer_id: str,
        tenant_id: uuid.UUID,
        *,
        consent: Sequence[ConsentRecord] = (),
    ) -> frozenset[uuid.UUID]:
        visit = (company_id, customer_id, tenant_id)
        rows = [consent_row(company_id, r) for r in consent]
        tenants = await self._writes.visit(visit, rows)
        self._known[visit] = None
        self._known.move_to_end(visit)
        if len(self._known) > self._known_size:
            self._known.popitem(last=False)
        return tenants

    async def close(self) -> None:
        """Let the round in flight finish (at most the writer's timeout), then close."""
        await self._writes.close()

    @property
    def statements(self) -> int:
        """Transactions its writer committed (tests read them)."""
        return self._writes.commits

    @property
    def visits(self) -> int:
        """Visits those carried."""
        return self._writes.visits
