"""The PostgreSQL send ledger (job_executions), held to the `Ledger` contract the unit tests'
in-memory ledger meets too (tests/unit/outbound/ledger_contract.py), and the tenant directory,
on the real database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import time
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from schemas.base import Channel
from services.common.db.tenants import add_services, set_hours
from services.outbound.adapters.ledger_pg import PostgresLedger
from services.outbound.adapters.pg_pool import open_pool
from services.outbound.adapters.tenants_pg import PostgresTenantDirectory
from tests.support.ledger_contract import LedgerContract, OptOutLead, SuppressGlobally

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
