"""The tenant cache in front of PostgreSQL: a webhook costs no query; an expired entry is
served while it is refreshed, so a PostgreSQL outage does not stop webhooks of known tenants."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from fakes.shopmonkey.data import World
from services.ingest.adapters.tenants_pg import PostgresTenants
from services.ingest.domain.model import IngestCompany
from services.ingest.errors import Unavailable
from tests.support.deployment_secrets import BOX
from tests.unit.ingest.support import company_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Loader:
    def __init__(self, company: IngestCompany | None) -> None:
        self.company = company
        self.calls = 0
        self.down = False

    async def __call__(self) -> IngestCompany | None:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise OperationalError("SELECT", {}, OSError("connection refused"))
        return self.company


def directory(clock: Clock) -> PostgresTenants:
    return PostgresTenants(engine=None, box=BOX, ttl=30.0, max_stale=600.0, clock=clock)  # type: ignore[arg-type]


async def test_hits_cost_no_query_and_expired_entries_are_served_while_refreshed() -> None:
    clock = Clock()
    tenants = directory(clock)
    cache = tenants._by_tenant
    company = company_of(World(seed=2).companies[0])
    key = company.tenants[0].id
    load = Loader(company)
    assert await tenants._cached(cache, key, load) is company
    assert await tenants._cached(cache, key, load) is company
    assert load.calls == 1
    clock.now += 31  # expired
    load.down = True
    assert await tenants._cached(cache, key, load) is company  # stale, no wait, no 503
    await asyncio.sleep(0.01)
    assert load.calls == 2  # the refresh ran (and failed): the entry is kept
    load.down = False
    assert await tenants._cached(cache, key, load) is company
    await asyncio.sleep(0.01)
    assert load.calls == 3 and cache.peek(key) == (company,)  # refreshed: fresh for 30 s
    clock.now += 29.9
    assert cache.peek(key) == (company,)
    clock.now += 0.2
    assert cache.peek(key) is None


async def test_beyond_max_stale_or_unknown_tenants_need_the_database() -> None:
    clock = Clock()
    tenants = directory(clock)
    cache = tenants._by_tenant
    unknown = Loader(None)
    assert await tenants._cached(cache, uuid.uuid4(), unknown) is None
    company = company_of(World(seed=2).companies[0])
    key = company.tenants[0].id
    load = Loader(company)
    await tenants._cached(cache, key, load)
    clock.now += 30 + 601
    load.down = True
    with pytest.raises(Unavailable):
        await tenants._cached(cache, key, load)
