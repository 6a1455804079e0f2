"""`leadctl companies`: add and list Shopmonkey companies, which hold what Shopmonkey issues per
company (the API key, the webhook signing secret); their locations are added with `leadctl
tenants add --company`."""

from __future__ import annotations

import asyncio

import click

from services.common.settings import CommonSettings, load_settings

#: Where a company's company-global Shopmonkey webhook is pointed (under ingest's public URL).
COMPANY_WEBHOOK_PATH = "/webhooks/shopmonkey/companies/{company_id}/order"


@click.group()
def companies() -> None:
    """Shopmonkey companies: API key and webhook secret, shared by their locations."""


@companies.command("add")
@click.option("--id", "company_id", required=True, help="Shopmonkey company id (companyId).")
@click.option("--name", required=True)
@click.option("--api-key", default=None, help="The company's Shopmonkey API key.")
@click.option(
    "--webhook-secret",
    default=None,
    help="Webhook signing secret (whsec_…; several space-separated while rotating); "
    "generated when omitted.",
)
@click.option(
    "--signature-scheme",
    type=click.Choice(["standard", "legacy_hmac"]),
    default="standard",
    show_default=True,
)
def companies_add(
    company_id: str,
    name: str,
    api_key: str | None,
    webhook_secret: str | None,
    signature_scheme: str,
) -> None:
    """Add a company; prints its webhook path and, when generated, its secret (shown once)."""
    from sqlalchemy.exc import IntegrityError

    from services.common.db.companies import add_company
    from services.common.db.engine import async_engine

    if len(company_id) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="--id")
    settings = load_settings(CommonSettings)

    async def go() -> str | None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                company = await add_company(
                    conn,
                    company_id=company_id,
                    name=name,
                    api_key=api_key,
                    webhook_secret=webhook_secret,
                    signature_scheme=signature_scheme,
                )
        finally:
            await engine.dispose()
        return company.webhook_secret

    try:
        secret = asyncio.run(go())
    except IntegrityError as exc:
        raise click.ClickException(f"company {company_id} already exists") from exc
    click.echo(f"company {company_id} ({name})")
    click.echo(
        f"webhook URL: https://<ingest host>{COMPANY_WEBHOOK_PATH.format(company_id=company_id)}"
    )
    if webhook_secret is None:
        click.echo(f"webhook secret (shown once): {secret}")
    click.echo(f"add its locations: leadctl tenants add --company {company_id} --location-id …")


@companies.command("list")
def companies_list() -> None:
    """List companies and their locations (secrets are never printed)."""
    from services.common.db.companies import list_companies
    from services.common.db.engine import async_engine
    from services.common.db.tenants import list_tenants

    settings = load_settings(CommonSettings)

    async def go() -> None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                rows = await list_companies(conn)
                tenants = await list_tenants(conn)
        finally:
            await engine.dispose()
        if not rows:
            click.echo("no companies; add one with `leadctl companies add`")
        for c in rows:
            locations = [t for t in tenants if t.shopmonkey_company_id == c.id]
            click.echo(
                f"{c.id}  {c.name:30}  locations={len(locations)}  "
                f"{'active' if c.active else 'inactive'}  "
                f"api_key={'set' if c.shopmonkey_api_key else 'none'}  "
                f"webhook_secret={'set' if c.webhook_secret else 'none'} ({c.signature_scheme})"
            )

    asyncio.run(go())
