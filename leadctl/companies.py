"""`leadctl companies`: add and list Shopmonkey companies, which hold what Shopmonkey issues per
company (the API key, the webhook signing secret); their locations are added with `leadctl
tenants add --company`.

Secrets never come from the command line (it lands in shell history and `ps`): the API key is
read from a hidden prompt, standard input or a named environment variable, the webhook secret
from a named environment variable or generated. Both are stored encrypted
(SECRETS_ENCRYPTION_KEYS, `db.companies`)."""

from __future__ import annotations

import asyncio
import os
import sys

import click

from services.common.settings import CommonSettings, SecretsEncryptionSettings, load_settings


class CompanySettings(CommonSettings, SecretsEncryptionSettings):
    """What `leadctl companies add` needs: the database and the encryption keys."""


def _from_env(name: str, option: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise click.BadParameter(
            f"environment variable {name} is empty or unset", param_hint=option
        )
    return value


def read_api_key(env_name: str | None, from_stdin: bool) -> str | None:
    """The API key from `env_name`, standard input, or a hidden prompt (a terminal only);
    None when none is given (a company whose webhooks only are used)."""
    if env_name:
        return _from_env(env_name, "--api-key-env")
    if from_stdin:
        value = sys.stdin.readline().strip()
        if not value:
            raise click.BadParameter("standard input is empty", param_hint="--api-key-stdin")
        return value
    if sys.stdin.isatty():
        value = click.prompt(
            "Shopmonkey API key (empty: none)", default="", hide_input=True, show_default=False
        )
        return str(value).strip() or None
    return None


#: Where a company's company-global Shopmonkey webhook is pointed (under ingest's public URL).
COMPANY_WEBHOOK_PATH = "/webhooks/shopmonkey/companies/{company_id}/order"


@click.group()
def companies() -> None:
    """Shopmonkey companies: API key and webhook secret, shared by their locations."""


@companies.command("add")
@click.option("--id", "company_id", required=True, help="Shopmonkey company id (companyId).")
@click.option("--name", required=True)
@click.option(
    "--api-key-env",
    metavar="VAR",
    default=None,
    help="Read the company's Shopmonkey API key from this environment variable.",
)
@click.option(
    "--api-key-stdin",
    is_flag=True,
    help="Read the API key from the first line of standard input. Without either option "
    "it is asked for (hidden) on a terminal.",
)
@click.option(
    "--webhook-secret-env",
    metavar="VAR",
    default=None,
    help="Read the webhook signing secret (whsec_…; several space-separated while rotating) "
    "from this environment variable; generated (and shown once) when omitted.",
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
    api_key_env: str | None,
    api_key_stdin: bool,
    webhook_secret_env: str | None,
    signature_scheme: str,
) -> None:
    """Add a company; prints its webhook path and, when generated, its secret (shown once)."""
    from sqlalchemy.exc import IntegrityError

    from services.common.db.companies import add_company
    from services.common.db.engine import async_engine

    if len(company_id) > 100:
        raise click.BadParameter("at most 100 characters", param_hint="--id")
    settings = load_settings(CompanySettings)
    api_key = read_api_key(api_key_env, api_key_stdin)
    webhook_secret = (
        _from_env(webhook_secret_env, "--webhook-secret-env") if webhook_secret_env else None
    )

    async def go() -> str | None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                company = await add_company(
                    conn,
                    box=settings.secret_box,
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
    click.echo(f"company {company_id} ({name}), API key {'set' if api_key else 'none'}")
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
                f"api_key={'set' if c.has_api_key else 'none'}  "
                f"webhook_secret={'set' if c.has_webhook_secret else 'none'} ({c.signature_scheme})"
            )

    asyncio.run(go())


@companies.command("customer-locations")
@click.option(
    "--company",
    "company_ids",
    multiple=True,
    help="Only this Shopmonkey company (repeatable); default: every company.",
)
def companies_customer_locations(company_ids: tuple[str, ...]) -> None:
    """Merge where each customer has leads (the lead read model) into `customer_locations`,
    which tells ingest the locations to tell of a customer's new order. Migration 0016 seeds
    it; run this once after ingest was upgraded and the sequencer has caught up, for the orders
    taken in between. Adds locations, never removes one; safe to run again."""
    from services.common.db.companies import list_companies
    from services.common.db.engine import async_engine
    from services.ingest.adapters.customer_locations_pg import merge_from_leads

    settings = load_settings(CommonSettings)

    async def go() -> None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.connect() as conn:
                known = [c.id for c in await list_companies(conn)]
        finally:
            await engine.dispose()
        unknown = sorted(set(company_ids) - set(known))
        if unknown:
            raise click.ClickException(f"no such company: {', '.join(unknown)}")
        chosen = list(company_ids) or known
        total = 0
        async for company_id, gained in merge_from_leads(settings.libpq_url, chosen):
            total += gained
            click.echo(f"{company_id}: {gained} customers gained a location")
        click.echo(f"{len(chosen)} companies, {total} customers gained a location")

    asyncio.run(go())
