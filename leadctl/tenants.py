"""`leadctl tenants`: add and list locations (a location of a Shopmonkey company added with
`leadctl companies add`, which holds the company's key and webhook secret; timezone, address)
and issue their lead API tokens."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import click

from leadctl.companies import COMPANY_WEBHOOK_PATH
from services.common.settings import CommonSettings, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.common.domain.location_health import Problem


@click.group()
def tenants() -> None:
    """Locations (tenants): Shopmonkey company and location, timezone, address."""


@tenants.command("add")
@click.option("--name", required=True)
@click.option(
    "--company",
    "--company-id",
    "company_id",
    required=True,
    help="Shopmonkey company id (`leadctl companies add` first).",
)
@click.option("--location-id", required=True, help="Shopmonkey location id (locationId).")
@click.option("--timezone", "tz", default="America/New_York", show_default=True)
@click.option("--state", "us_state", default=None, help="US state code (stricter SMS hours).")
@click.option("--address", default=None, help="Postal address (CAN-SPAM footer).")
@click.option("--id", "tenant_id", default=None, help="Use this UUID instead of a new one.")
def tenants_add(
    name: str,
    company_id: str,
    location_id: str,
    tz: str,
    us_state: str | None,
    address: str | None,
    tenant_id: str | None,
) -> None:
    """Add a location of a company; prints its id and website API key (shown once)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from services.common.db.companies import company_exists
    from services.common.db.engine import async_engine
    from services.common.db.tenants import add_tenant

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown timezone {tz!r}", param_hint="--timezone") from None
    if len(location_id) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="--location-id")
    settings = load_settings(CommonSettings)

    async def go() -> None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                if not await company_exists(conn, company_id=company_id):
                    raise click.ClickException(
                        f"no company {company_id}: add it first with `leadctl companies add`"
                    )
                tenant, key = await add_tenant(
                    conn,
                    name=name,
                    company_id=company_id,
                    location_id=location_id,
                    timezone=tz,
                    us_state=us_state.upper() if us_state else None,
                    postal_address=address,
                    tenant_id=uuid.UUID(tenant_id) if tenant_id else None,
                )
                problems = await _at_once(conn, tenant.id)
        finally:
            await engine.dispose()
        click.echo(f"tenant {tenant.id} ({tenant.name}, {tenant.timezone})")
        click.echo(f"website API key (shown once): {key}")
        company_path = COMPANY_WEBHOOK_PATH.format(company_id=company_id)
        click.echo(
            f"Shopmonkey webhook: the company's {company_path} (all its locations), or this "
            f"location's /webhooks/shopmonkey/{tenant.id}/order"
        )
        for problem in problems:
            click.secho(f"warning: {problem.text}", fg="yellow", err=True)

    from sqlalchemy.exc import IntegrityError

    try:
        asyncio.run(go())
    except IntegrityError as exc:
        raise click.ClickException(
            f"a tenant with company {company_id} / location {location_id} (or that id) "
            "already exists"
        ) from exc


#: What `tenants add` can tell of a location at once (the others need its history).
AT_ONCE = ("inactive", "no_postal_address", "no_hours", "no_shopmonkey_key")


async def _at_once(conn: AsyncConnection, tenant_id: uuid.UUID) -> list[Problem]:
    """What already keeps a new location from sending (`domain.location_health`)."""
    from services.common.db.location_health import location_facts
    from services.common.domain.location_health import location_problems

    now = datetime.now(UTC)
    [facts] = await location_facts(conn, tenants=frozenset({tenant_id}), now=now)
    problems = location_problems(facts, now=now, poll_interval=timedelta(seconds=30))
    return [p for p in problems if p.code in AT_ONCE]


@tenants.command("list")
def tenants_list() -> None:
    """List locations (secrets are never printed)."""
    from services.common.db.engine import async_engine
    from services.common.db.tenants import list_tenants

    settings = load_settings(CommonSettings)

    async def go() -> None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                rows = await list_tenants(conn)
        finally:
            await engine.dispose()
        if not rows:
            click.echo("no tenants; add one with `leadctl tenants add`")
        for t in rows:
            click.echo(
                f"{t.id}  {t.name:30}  company={t.shopmonkey_company_id} "
                f"location={t.shopmonkey_location_id}  tz={t.timezone}  "
                f"{'active' if t.active else 'inactive'}"
            )

    asyncio.run(go())


@tenants.command("lead-api-key")
@click.argument("tenant_id", type=click.UUID)
def tenants_lead_api_key(tenant_id: uuid.UUID) -> None:
    """Issue a new lead API token for the chat service (shown once; replaces the old one)."""
    from services.common.db.engine import async_engine
    from services.common.db.tenants import get_tenant
    from services.ingest.adapters.lead_reader_pg import issue_lead_api_key

    settings = load_settings(CommonSettings)

    async def go() -> str:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                if await get_tenant(conn, tenant_id=tenant_id) is None:
                    raise click.ClickException(f"no tenant {tenant_id}")
                return await issue_lead_api_key(conn, tenant_id=tenant_id)
        finally:
            await engine.dispose()

    token = asyncio.run(go())
    click.echo(f"lead API token for {tenant_id} (shown once; stored hashed):")
    click.echo(token)


@tenants.command("closed-days")
@click.argument("tenant_id", type=click.UUID)
@click.option("--add", "add", multiple=True, metavar="YYYY-MM-DD", help="Mark a day closed.")
@click.option("--remove", "remove", multiple=True, metavar="YYYY-MM-DD", help="Open it again.")
def tenants_closed_days(
    tenant_id: uuid.UUID, add: tuple[str, ...], remove: tuple[str, ...]
) -> None:
    """The days a location is closed (holidays, its local dates): no send window opens on
    them, so campaigns and touch points due then wait for the next open day. Lists them."""
    from services.common.db.engine import async_engine
    from services.common.db.tenants import get_tenant, set_closed_days

    def days(values: tuple[str, ...], option: str) -> set[date]:
        out = set()
        for value in values:
            try:
                out.add(date.fromisoformat(value))
            except ValueError:
                raise click.BadParameter(
                    f"{value!r} is no date (YYYY-MM-DD)", param_hint=option
                ) from None
        return out

    added, removed = days(add, "--add"), days(remove, "--remove")
    settings = load_settings(CommonSettings)

    async def go() -> list[date]:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                if await get_tenant(conn, tenant_id=tenant_id) is None:
                    raise click.ClickException(f"no tenant {tenant_id}")
                return await set_closed_days(conn, tenant_id=tenant_id, add=added, remove=removed)
        finally:
            await engine.dispose()

    closed = asyncio.run(go())
    click.echo(f"{len(closed)} closed day(s) for {tenant_id}")
    for day in closed:
        click.echo(f"  {day.isoformat()} {day:%a}")
