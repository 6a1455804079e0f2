"""The tenant cache in front of PostgreSQL: a webhook costs no query; an expired entry is
served while it is refreshed, so a PostgreSQL outage does not stop webhooks of known tenants."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from fakes.shopmonkey.data import World
from services.ingest.adapters.tenants_pg import PostgresTenants
from services.ingest.domain.model import IngestTenant
from services.ingest.errors import Unavailable
from tests.unit.ingest.support import tenant_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self, tenant: IngestTenant | None) -> None:
        self.tenant = tenant
        self.calls = 0
        self.down = False

    async def __call__(self) -> IngestTenant | None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise OperationalError("SELECT", {}, OSError("connection refused"))
        return self.tenant


def directory(clock: Clock) -> PostgresTenants:
    return PostgresTenants(engine=None, ttl=30.0, max_stale=600.0, clock=clock)  # type: ignore[arg-type]


async def test_hits_cost_no_query_and_expired_entries_are_served_while_refreshed() -> None:
    clock = Clock()
    tenants = directory(clock)
    cache = tenants._by_id
    tenant = tenant_of(World(seed=2).companies[0])
    load = Loader(tenant)
    key = tenant.id
    assert await tenants._cached(cache, key, load) is tenant
    assert await tenants._cached(cache, key, load) is tenant
    assert load.calls == 1
    clock.now += 31  # expired
    load.down = True
    assert await tenants._cached(cache, key, load) is tenant  # stale, no wait, no 503
    await asyncio.sleep(0.01)
    assert load.calls == 2  # the refresh ran (and failed): the entry is kept
    load.down = False
    assert await tenants._cached(cache, key, load) is tenant
    await asyncio.sleep(0.01)
    assert load.calls == 3 and cache.peek(key) == (tenant,)  # refreshed: fresh for 30 s
    clock.now += 29.9
    assert cache.peek(key) == (tenant,)
    clock.now += 0.2
    assert cache.peek(key) is None


async def test_beyond_max_stale_or_unknown_tenants_need_the_database() -> None:
    clock = Clock()
    tenants = directory(clock)
    cache = tenants._by_id
    unknown = Loader(None)
    assert await tenants._cached(cache, uuid.uuid4(), unknown) is None
    tenant = tenant_of(World(seed=2).companies[0])
    load = Loader(tenant)
    await tenants._cached(cache, tenant.id, load)
    clock.now += 30 + 601
    load.down = True
    with pytest.raises(Unavailable):
        await tenants._cached(cache, tenant.id, load)
