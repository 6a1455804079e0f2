"""The dashboard's lead search on real PostgreSQL: a prefix of a name, the full name, email,
order number or lead id in any case, digits of a phone, scoped to locations, paged, and LIKE's
wildcards in the text taken literally."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import update

from services.common.db.models import Lead
from services.ingest.adapters.lead_directory_pg import PostgresLeadDirectory
from tests.support.read_model_rows import add_lead

pytestmark = pytest.mark.integration


async def test_search_finds_by_each_field_in_scope_and_literally(db_engine, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant, _ = await make_tenant()
    other, _ = await make_tenant()
    tag = uuid.uuid4().hex[:8]
    async with db_engine.begin() as conn:
        zelda = await add_lead(
            conn, tenant.id, "new", first_name=f"Zelda{tag}", email=f"zq_{tag}@example.net",
            phone="+12025550177",
        )  # fmt: skip
        await conn.execute(
            update(Lead).where(Lead.lead_id == zelda).values(order_number=f"A-{tag}")
        )
        await add_lead(conn, other.id, "new", first_name=f"Zelda{tag}")
        for _ in range(3):
            await add_lead(conn, tenant.id, "new", first_name=f"Page{tag}")
    directory = PostgresLeadDirectory(db_engine)
    mine = frozenset({tenant.id})

    async def ids(query: str, tenants: frozenset[uuid.UUID] | None = mine) -> list[uuid.UUID]:
        rows = await directory.search(tenants=tenants, query=query, limit=10, offset=0)
        return [r["lead_id"] for r in rows]

    for query in (f"zELDA{tag}", f"zelda{tag} doe", f"ZQ_{tag}", f"a-{tag}", str(zelda)[:8]):
        assert await ids(query) == [zelda], query
    assert len(await ids(f"zelda{tag}", None)) == 2  # hq: every location
    assert await ids(f"zq%{tag}") == []  # % is a character here, not a wildcard
    assert await ids(f"z_lda{tag}") == []  # and _ is an underscore
    assert zelda in await ids("2025550177") and zelda in await ids("555-0177")
    page = await directory.search(tenants=mine, query=f"page{tag}", limit=2, offset=2)
    assert len(page) == 1
    lead, jobs = await directory.lead(zelda)
    assert lead is not None and lead["tenant_name"] == tenant.name and jobs == []
    assert await directory.lead(uuid.uuid4()) == (None, [])
