"""`leadctl tenants closed-days`: a location's holidays, stored in PostgreSQL and read by both
the sequencer's and outbound's tenant directories into the send-window policy."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from click.testing import CliRunner, Result

from leadctl.main import cli
from services.outbound.adapters.pg_pool import open_pool
from services.outbound.adapters.tenants_pg import PostgresTenantDirectory
from services.sequencer.adapters.tenant_directory import PostgresDirectory

pytestmark = pytest.mark.integration


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args))


@pytest.fixture(autouse=True)
def _database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)


async def test_closed_days_are_set_listed_and_read_by_both_directories(
    db_url: str, db_engine: Any, make_tenant: Any
) -> None:
    tenant, _ = await make_tenant()
    tid = str(tenant.id)
    out = await invoke(
        "tenants", "closed-days", tid, "--add", "2026-12-25", "--add", "2026-12-26", "--add",
        "2027-01-01", "--remove", "2026-12-26",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "2 closed day(s)" in out.output and "2026-12-25 Fri" in out.output
    again = await invoke("tenants", "closed-days", tid, "--add", "2026-12-25")  # idempotent
    assert again.exit_code == 0 and "2 closed day(s)" in again.output

    sequencer = PostgresDirectory(db_engine, "America/New_York", ttl=60)
    await sequencer.ensure([tenant.id])
    assert sequencer.get(tenant.id).policy.closed == {date(2026, 12, 25), date(2027, 1, 1)}
    pool = await open_pool(db_url, size=1)
    try:
        profile = await PostgresTenantDirectory(pool, ttl_seconds=0).get(tenant.id)
    finally:
        await pool.close()
    assert profile is not None
    assert profile.policy.closed == {date(2026, 12, 25), date(2027, 1, 1)}


async def test_a_bad_date_or_an_unknown_location_changes_nothing_and_says_why(
    make_tenant: Any,
) -> None:
    tenant, _ = await make_tenant()
    bad = await invoke("tenants", "closed-days", str(tenant.id), "--add", "25/12/2026")
    assert bad.exit_code == 2 and "is no date (YYYY-MM-DD)" in bad.output
    listed = await invoke("tenants", "closed-days", str(tenant.id))
    assert "0 closed day(s)" in listed.output
    unknown = await invoke("tenants", "closed-days", str(uuid.uuid4()), "--add", "2026-12-25")
    assert unknown.exit_code == 1 and "no tenant" in unknown.output
