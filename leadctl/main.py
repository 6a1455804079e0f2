"""`leadctl`: the one operator entry point. Each command imports what it needs lazily, so the
CLI starts fast and a service never imports another."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from services.common.errors import LeadOrchestratorError
from services.common.settings import CommonSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


def run_async(coro_fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(coro_fn())
    except LeadOrchestratorError as exc:
        raise click.ClickException(str(exc)) from exc


#: Commands that live beside the code they run, loaded only when called ("module:attribute").
LAZY_COMMANDS = {
    "ingest": "services.ingest.entrypoints.cli:ingest",
    "poller": "services.ingest.entrypoints.cli:poller",
    "sequencer": "services.sequencer.entrypoints.cli:sequencer",
    "outbound": "services.outbound.entrypoints.cli:outbound",
    "simulate": "fakes.cli:simulate",
    "status": "leadctl.status_cmd:status",
    "leads": "leadctl.leads_cmd:leads",
    "replay": "leadctl.replay_cmd:replay",
    "backfill": "leadctl.backfill_cmd:backfill",
}


class Cli(click.Group):
    """Lazy sub-commands, and our own errors (bad config, unreachable Kafka) as one clean line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in LAZY_COMMANDS:
            import importlib

            module, _, attr = LAZY_COMMANDS[name].partition(":")
            try:
                command: click.Command = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError):
                return None  # not built yet: click says "No such command"
            return command
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadOrchestratorError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Lead orchestrator operations: infrastructure, topics, migrations, tenants, services."""


def common_settings() -> CommonSettings:
    return load_settings(CommonSettings)


# infra -----------------------------------------------------------------------------------------
@cli.group()
def infra() -> None:
    """Local Kafka and PostgreSQL (reused when they already answer)."""


def _infra(script: str) -> None:
    code = subprocess.call(["bash", str(ROOT / "infra" / script)])
    if code:
        sys.exit(code)


@infra.command("up")
def infra_up() -> None:
    """Start Kafka and PostgreSQL (or reuse what answers)."""
    _infra("up.sh")


@infra.command("down")
def infra_down() -> None:
    """Stop what `infra up` started."""
    _infra("down.sh")


@infra.command("status")
def infra_status() -> None:
    """Say what runs."""
    _infra("status.sh")


# topics ----------------------------------------------------------------------------------------
@cli.group()
def topics() -> None:
    """Kafka topics of DESIGN §2 and their dead-letter topics."""


@topics.command("create")
@click.option("--partitions", type=int, default=None, help="Default: KAFKA_PARTITIONS (12).")
def topics_create(partitions: int | None) -> None:
    """Create every topic and its DLQ with the same partition count (idempotent)."""
    from services.common.kafka.admin import ensure_topics

    settings = common_settings()
    count = partitions or settings.kafka_partitions
    reports = ensure_topics(
        settings.kafka_bootstrap_servers, partitions=count, names=settings.topics.with_dlqs()
    )
    bad = []
    for r in reports:
        click.echo(f"{r.action:8} {r.name} ({r.partitions} partitions)")
        if r.action == "mismatch":
            bad.append(r.name)
    if bad:
        raise click.ClickException(
            f"partition count differs from {count} on: {', '.join(bad)} "
            "(Faust needs co-partitioned topics; recreate them or set KAFKA_PARTITIONS)"
        )


@topics.command("list")
def topics_list() -> None:
    """List the project's topics with partition counts."""
    from services.common.kafka.admin import admin_client, wanted_topics

    settings = common_settings()
    existing = admin_client(settings.kafka_bootstrap_servers).list_topics(timeout=10).topics
    for name in wanted_topics(settings.kafka_topic_prefix):
        meta = existing.get(name)
        click.echo(f"{name}: {len(meta.partitions) if meta else 'missing'}")


# migrations ------------------------------------------------------------------------------------
def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url or common_settings().sqlalchemy_url)
    return config


@cli.group()
def migrate() -> None:
    """Database schema (Alembic): the seed's migrate, migrate:rollback, migrate:make."""


@migrate.command("up")
@click.argument("revision", default="head")
def migrate_up(revision: str) -> None:
    """Upgrade to REVISION (default: head)."""
    from alembic import command

    command.upgrade(alembic_config(), revision)
    click.echo(f"database at {revision}")


@migrate.command("down")
@click.argument("revision", default="-1")
def migrate_down(revision: str) -> None:
    """Roll back to REVISION (default: one step; `base` for everything)."""
    from alembic import command

    command.downgrade(alembic_config(), revision)
    click.echo(f"database rolled back to {revision}")


@migrate.command("new")
@click.argument("message")
@click.option(
    "--autogenerate/--empty",
    default=True,
    help="Diff the models against the database (review the result!).",
)
def migrate_new(message: str, autogenerate: bool) -> None:
    """Create a new revision file under migrations/versions."""
    from alembic import command

    command.revision(alembic_config(), message=message, autogenerate=autogenerate)


@migrate.command("current")
def migrate_current() -> None:
    """Show the database's revision."""
    from alembic import command

    command.current(alembic_config(), verbose=False)


# tenants ---------------------------------------------------------------------------------------
@cli.group()
def tenants() -> None:
    """Locations (tenants): Shopmonkey account, secrets, timezone."""


@tenants.command("add")
@click.option("--name", required=True)
@click.option("--company-id", required=True, help="Shopmonkey company id.")
@click.option("--location-id", required=True, help="Shopmonkey location id.")
@click.option("--api-key", default=None, help="This location's Shopmonkey API key.")
@click.option(
    "--webhook-secret",
    default=None,
    help="Webhook signing secret (whsec_…); generated when omitted.",
)
@click.option(
    "--signature-scheme",
    type=click.Choice(["standard", "legacy_hmac"]),
    default="standard",
    show_default=True,
)
@click.option("--timezone", "tz", default="America/New_York", show_default=True)
@click.option("--state", "us_state", default=None, help="US state code (stricter SMS hours).")
@click.option("--address", default=None, help="Postal address (CAN-SPAM footer).")
@click.option("--id", "tenant_id", default=None, help="Use this UUID instead of a new one.")
def tenants_add(
    name: str,
    company_id: str,
    location_id: str,
    api_key: str | None,
    webhook_secret: str | None,
    signature_scheme: str,
    tz: str,
    us_state: str | None,
    address: str | None,
    tenant_id: str | None,
) -> None:
    """Add a location; prints its id and website API key (shown once)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from services.common.db.engine import async_engine
    from services.common.db.tenants import add_tenant

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown timezone {tz!r}", param_hint="--timezone") from None
    settings = common_settings()

    async def go() -> None:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                tenant, key = await add_tenant(
                    conn,
                    name=name,
                    company_id=company_id,
                    location_id=location_id,
                    timezone=tz,
                    api_key=api_key,
                    webhook_secret=webhook_secret,
                    signature_scheme=signature_scheme,
                    us_state=us_state.upper() if us_state else None,
                    postal_address=address,
                    tenant_id=uuid.UUID(tenant_id) if tenant_id else None,
                )
        finally:
            await engine.dispose()
        click.echo(f"tenant {tenant.id} ({tenant.name}, {tenant.timezone})")
        click.echo(f"website API key (shown once): {key}")
        if webhook_secret is None:
            click.echo(f"webhook secret: {tenant.webhook_secret}")

    from sqlalchemy.exc import IntegrityError

    try:
        run_async(go)
    except IntegrityError as exc:
        raise click.ClickException(
            f"a tenant with company {company_id} / location {location_id} (or that id) "
            "already exists"
        ) from exc


@tenants.command("list")
def tenants_list() -> None:
    """List locations (secrets are never printed)."""
    from services.common.db.engine import async_engine
    from services.common.db.tenants import list_tenants

    settings = common_settings()

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
                f"{'active' if t.active else 'inactive'}  "
                f"api_key={'set' if t.shopmonkey_api_key else 'none'}"
            )

    run_async(go)


@tenants.command("lead-api-key")
@click.argument("tenant_id", type=click.UUID)
def tenants_lead_api_key(tenant_id: uuid.UUID) -> None:
    """Issue a new lead API token for the chat service (shown once; replaces the old one)."""
    from services.common.db.engine import async_engine
    from services.common.db.tenants import get_tenant
    from services.ingest.service_layer.provider_signals_leads import issue_lead_api_key

    settings = common_settings()

    async def go() -> str:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                if await get_tenant(conn, tenant_id=tenant_id) is None:
                    raise click.ClickException(f"no tenant {tenant_id}")
                return await issue_lead_api_key(conn, tenant_id=tenant_id)
        finally:
            await engine.dispose()

    token = run_async(go)
    click.echo(f"lead API token for {tenant_id} (shown once; stored hashed):")
    click.echo(token)


# run ---------------------------------------------------------------------------------------------
@cli.command("run")
@click.option("--no-demo", is_flag=True, help="Do not create demo locations when none exist.")
def run_all(no_demo: bool) -> None:
    """Run every service in one log stream (what `make run` calls); Ctrl-C stops them all.

    Without SHOPMONKEY_API_KEY the Shopmonkey simulator feeds it; without SendGrid/Twilio keys
    the fake providers stand in and one demo address is whitelisted (see leadctl/demo.py)."""
    import os
    import threading
    import time

    from leadctl.demo import plan, provision_demo_locations, watch_first_touch
    from leadctl.supervisor import supervise

    settings = common_settings()
    started = time.monotonic()
    ctx = click.get_current_context()
    the_plan = plan(dict(os.environ), available=lambda n: cli.get_command(ctx, n) is not None)
    click.echo(f"Kafka           {settings.kafka_bootstrap_servers}")
    click.echo(f"PostgreSQL      {settings.database_url.split('@')[-1]}")
    click.echo(f"topics          {', '.join(settings.topics.main())} (+ .dlq)")
    if "SHOPMONKEY_API_BASE_URL" in the_plan.env and not no_demo:
        for line in run_async(lambda: provision_demo_locations(settings.sqlalchemy_url)):
            click.echo(line)
    for note in the_plan.notes:
        click.echo(note)
    stop = threading.Event()
    if the_plan.demo_email:
        watch_first_touch(
            settings.libpq_url,
            started=started,
            stop=stop,
            say=lambda msg: click.secho(f"==> {msg}", bold=True),
        )
    try:
        code = supervise(the_plan.processes)
    finally:
        stop.set()
    sys.exit(code)


if __name__ == "__main__":
    cli()
