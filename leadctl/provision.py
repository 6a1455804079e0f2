"""What an environment needs before the services start: local Kafka and PostgreSQL (`infra`)
and the schema (`migrate`); the topics are `leadctl topics` (leadctl/topics/)."""

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


def alembic_config(url: str | None = None) -> Any:
    """Alembic's configuration for `url` (default: DATABASE_URL). The URL goes through an
    ini-style option, which interpolates `%`: escaped, so a percent-encoded option of the URL
    (`?options=-c%20statement_timeout%3D5000`) reaches the connection as written."""
    from alembic.config import Config

    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    url = url or load_settings(CommonSettings).sqlalchemy_url
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
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
