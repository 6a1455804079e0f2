"""The sequencer's tenant directory on real PostgreSQL: the first look-up after a start reads
every tenant, so no location's first batch waits for a read of its own; a tenant not in
`tenants` still gets the default configuration, looked up once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import event

from services.common.db.engine import async_engine
from services.sequencer.adapters.tenant_directory import PostgresDirectory

pytestmark = pytest.mark.integration


async def test_the_first_look_up_reads_every_tenant(sa_url: str, make_tenant: Any) -> None:
    tenants = [await make_tenant(timezone=tz) for tz in ("America/Chicago", "America/Denver")]
    (first, _), (second, _) = tenants
    engine = async_engine(sa_url, pool_size=1)
    statements: list[str] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    try:
        directory = PostgresDirectory(engine, "America/New_York", ttl=60)
        await directory.ensure([first.id])  # a batch of the first location only
        read = len(statements)
        config = directory.get(second.id)
        assert config.known and config.policy.timezone == "America/Denver"
        await directory.ensure([second.id])  # its first batch: nothing to read
        assert len(statements) == read
        stranger = uuid.uuid4()  # not a location here: the default, read for once
        await directory.ensure([stranger])
        assert len(statements) > read and not directory.get(stranger).known
        again = len(statements)
        await directory.ensure([stranger, first.id])
        assert len(statements) == again  # its miss is cached
    finally:
        await engine.dispose()
