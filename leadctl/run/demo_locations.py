"""The demo's companies and locations, provisioned by their fixed ids whenever the Shopmonkey
simulator runs, on any database: other (real) locations are left alone, and the simulator's
webhooks always find their location (no `unknown tenant`).

Each run: a missing demo company or location is added; a kept one gets the simulator's API key
and webhook secret again (the stored ones may be encrypted under keys this checkout no longer
has), is made active, and the first location moves to the zone where it is mid-day now, so its
touch points are due at once at any hour. What cannot be fixed (a location registered under
another id with the simulator's Shopmonkey ids) is said, with how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import time as clock
from typing import TYPE_CHECKING

from leadctl.run.demo import (
    DEMO_CAMPAIGNS,
    DEMO_REVIEW_URL,
    DEMO_SERVICES,
    SIM_COMPANIES,
    SIM_SEED,
    midday_zone,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from fakes.shopmonkey.data import Company, Location
    from services.common.secret_box import SecretBox

#: The demo locations' opening hours, every day (local to each location's zone).
DEMO_HOURS = (clock(7), clock(21))


@dataclass
class Provisioned:
    """What provisioning did (`lines`, one per location) and what keeps the demo from working
    (`problems`, each with how to fix it)."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def demo_zones(now: datetime) -> list[str]:
    return [midday_zone(now), "America/Chicago", "America/Los_Angeles"]


async def provision_demo_locations(
    database_url: str, *, box: SecretBox, now: datetime | None = None
) -> Provisioned:
    """Every simulated company and location, by the ids the simulator's seed gives them."""
    from fakes.shopmonkey.data import World
    from services.common.db.engine import async_engine

    world = World(seed=SIM_SEED, layout=SIM_COMPANIES)
    zones = demo_zones(now or datetime.now(UTC))
    out = Provisioned()
    engine = async_engine(database_url, pool_size=1)
    try:
        for company in world.companies:
            async with engine.begin() as conn:
                await _company(conn, company, box)
        for n, (location, zone) in enumerate(zip(world.locations, zones, strict=False)):
            async with engine.begin() as conn:
                await _location(conn, location, box, zone, n, out)
    finally:
        await engine.dispose()
    return out


async def _company(conn: AsyncConnection, company: Company, box: SecretBox) -> None:
    """A kept company gets the simulator's key and secret again (a new one is added with its
    first location: `add_simulated`)."""
    from services.common.db.companies import company_exists, set_secrets

    if await company_exists(conn, company_id=company.company_id):
        await set_secrets(
            conn,
            box=box,
            company_id=company.company_id,
            api_key=company.api_key,
            webhook_secret=company.webhook_secret,
        )


async def _location(
    conn: AsyncConnection, location: Location, box: SecretBox, zone: str, n: int, out: Provisioned
) -> None:
    from sqlalchemy import select

    from fakes.shopmonkey.cli import add_simulated
    from services.common.db.models import Tenant
    from services.common.db.tenants import (
        add_services,
        get_tenant,
        set_campaigns,
        set_hours,
        set_place,
    )

    what = f"demo location {location.name} of {location.company.company_name} ({zone})"
    hours = {day: DEMO_HOURS for day in range(7)}
    found = await get_tenant(conn, tenant_id=location.tenant_id)
    if found is None:
        other = (
            await conn.execute(
                select(Tenant.id).where(
                    Tenant.shopmonkey_company_id == location.company.company_id,
                    Tenant.shopmonkey_location_id == location.location_id,
                )
            )
        ).scalar_one_or_none()
        if other is not None:
            out.problems.append(
                f"{what}: Shopmonkey location {location.location_id} is registered as tenant "
                f"{other}, not {location.tenant_id}, so its demo orders go there; remove that "
                "tenant, or run against a real Shopmonkey (SHOPMONKEY_API_KEY)"
            )
            return
        tenant = await add_simulated(
            conn,
            location,
            box=box,
            timezone=zone,
            postal_address=f"{n + 1} Demo Way, Springfield, IL 62701",
            phone="+15005550006",
        )
        await add_services(conn, tenant_id=tenant.id, services=list(DEMO_SERVICES))
        await set_hours(conn, tenant_id=tenant.id, hours=hours)
        await set_campaigns(
            conn, tenant_id=tenant.id, plans=DEMO_CAMPAIGNS, review_url=DEMO_REVIEW_URL
        )
        out.lines.append(f"{what} {tenant.id}: added")
        return
    await set_place(conn, tenant_id=found.id, timezone=zone)
    await set_hours(conn, tenant_id=found.id, hours=hours)
    await set_campaigns(conn, tenant_id=found.id, plans=DEMO_CAMPAIGNS, review_url=DEMO_REVIEW_URL)
    out.lines.append(f"{what} {found.id}: kept (hours 07-21, active)")
