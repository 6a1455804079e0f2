"""`leadctl secrets new-key|rotate|local`: the keys of the secrets stored in PostgreSQL.

Rotating SECRETS_ENCRYPTION_KEYS: put a new key (`new-key`) first in the list (the old ones
after it), restart the services, run `rotate` (every stored secret re-encrypted under the new
key, in one transaction), then drop the old keys.
"""

from __future__ import annotations

import asyncio

import click

from leadctl import ROOT
from services.common.settings import CommonSettings, SecretsEncryptionSettings, load_settings


class RotateSettings(CommonSettings, SecretsEncryptionSettings):
    """The database and the encryption keys."""


@click.group()
def secrets() -> None:
    """Keys of the secrets at rest (SECRETS_ENCRYPTION_KEYS)."""


@secrets.command("new-key")
def secrets_new_key() -> None:
    """Print a new Fernet key (for SECRETS_ENCRYPTION_KEYS)."""
    from services.common.secret_box import new_key

    click.echo(new_key())


@secrets.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every stored Shopmonkey API key and webhook secret under the first key."""
    from services.common.db.companies import rotate_secrets
    from services.common.db.engine import async_engine

    settings = load_settings(RotateSettings)

    async def go() -> int:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                return await rotate_secrets(conn, box=settings.secret_box)
        finally:
            await engine.dispose()

    count = asyncio.run(go())
    click.echo(f"re-encrypted the secrets of {count} companies under the first key")


@secrets.command("local")
def secrets_local() -> None:
    """Generate the local run's secrets into .env.local (only those set nowhere yet)."""
    from leadctl.secrets.local import ensure_local_secrets

    written = ensure_local_secrets(ROOT)
    if written:
        click.echo(f"wrote {', '.join(written)} to .env.local (local use only)")
