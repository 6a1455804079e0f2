"""The simulator's list endpoints of a multi-location company, as probed (reference §2.3, §3):
every list is the company's; the `locationId` query parameter scopes a valid location and is
silently ignored for an invalid one (200, the whole table); `where` on locationId is Prisma;
`ignore_location_filter` drops both."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from fakes.shopmonkey.data import World
from fakes.shopmonkey.server import Simulator

pytestmark = pytest.mark.integration


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    world = World(seed=4, layout=(3, 1))
    for location in world.locations:
        for _ in range(4):
            world.create_order(location.company, location=location)
    simulator = await Simulator(world).start()
    yield simulator
    await simulator.stop()


async def orders(sim: Simulator, **query: str) -> dict[str, Any]:
    company = sim.world.companies[0]
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sim.api_base}/order",
            params=query,
            headers={"Authorization": f"Bearer {company.api_key}"},
        ) as resp,
    ):
        assert resp.status == 200
        doc: dict[str, Any] = await resp.json()
        return doc


def locations(doc: dict[str, Any]) -> set[str]:
    return {o["locationId"] for o in doc["data"]}


async def test_location_filters_of_a_multi_location_company(sim: Simulator) -> None:
    company = sim.world.companies[0]
    first, second, third = (loc.location_id for loc in company.locations)
    everything = await orders(sim)
    assert everything["meta"]["total"] == 12 and locations(everything) == {first, second, third}
    assert locations(await orders(sim, locationId=second)) == {second}
    # an invalid location: no error, no filter: the whole table (the live probe)
    for invalid in ("loc_nope", sim.world.companies[1].location_id, ""):
        ignored = await orders(sim, locationId=invalid)
        assert ignored["meta"]["total"] == 12 and locations(ignored) == {first, second, third}
    where = json.dumps({"locationId": {"in": [first, third]}})
    assert locations(await orders(sim, where=where)) == {first, third}
    sim.quirks.ignore_location_filter = True
    assert locations(await orders(sim, locationId=second)) == {first, second, third}
    assert locations(await orders(sim, where=where)) == {first, second, third}
