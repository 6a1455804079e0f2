"""What an environment needs before the services start: local Kafka and PostgreSQL (`infra`),
the topics of DESIGN §2 with their dead-letter topics (`topics`), the schema (`migrate`)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import click

from leadctl import ROOT
from services.common.settings import CommonSettings, load_settings


@click.group()
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


@click.group()
def topics() -> None:
    """Kafka topics of DESIGN §2 and their dead-letter topics."""


@topics.command("create")
@click.option("--partitions", type=int, default=None, help="Default: KAFKA_PARTITIONS (12).")
def topics_create(partitions: int | None) -> None:
    """Create every topic and its DLQ with the same partition count (idempotent)."""
    from services.common.kafka.admin import ensure_topics

    settings = load_settings(CommonSettings)
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

    settings = load_settings(CommonSettings)
    existing = admin_client(settings.kafka_bootstrap_servers).list_topics(timeout=10).topics
    for name in wanted_topics(settings.kafka_topic_prefix):
        meta = existing.get(name)
        click.echo(f"{name}: {len(meta.partitions) if meta else 'missing'}")


def alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url or load_settings(CommonSettings).sqlalchemy_url)
    return config


@click.group()
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
