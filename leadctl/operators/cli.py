"""`leadctl operators add|list|disable|enable|reset`: dashboard accounts.

An `hq` operator sees every location; a `location` operator only the tenants named with
`--tenant`. A password (for the sign-in page) or, with `--token`, an API token (for scripts:
`Authorization: Bearer …` on the dashboard's JSON) is generated and shown once; only its
argon2 hash is stored. `reset` issues a new one and `disable` locks the account; both end every
session signed before.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from services.common.settings import CommonSettings, load_settings

T = TypeVar("T")


def _with_conn(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run `work(conn)` in one transaction of DATABASE_URL."""
    from services.common.db.engine import async_engine

    settings = load_settings(CommonSettings)

    async def go() -> T:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _issue(token_account: bool, operator_id: uuid.UUID) -> tuple[str, str, dict[str, str]]:
    """(label, secret, hash columns) of a new credential."""
    from services.common import passwords
    from services.common.domain.operators import new_api_token

    if token_account:
        token = new_api_token(operator_id)
        return "API token", token, {"token_hash": passwords.hash_secret(token)}
    password = passwords.new_password()
    return "password", password, {"password_hash": passwords.hash_secret(password)}


@click.group()
def operators() -> None:
    """Dashboard accounts: hq (every location) or location (named tenants)."""


@operators.command("add")
@click.argument("email")
@click.option("--role", type=click.Choice(["hq", "location"]), required=True)
@click.option(
    "--tenant",
    "tenants",
    type=click.UUID,
    multiple=True,
    help="A location a `location` operator sees (repeat).",
)
@click.option("--token", "token_account", is_flag=True, help="An API token instead of a password.")
def operators_add(
    email: str, role: str, tenants: tuple[uuid.UUID, ...], token_account: bool
) -> None:
    """Add an account; prints its password (or API token), shown once."""
    from sqlalchemy.exc import IntegrityError

    from services.common.db.operators import add_operator

    if "@" not in email or len(email) > 320:
        raise click.BadParameter("an email address", param_hint="EMAIL")
    if role == "location" and not tenants:
        raise click.BadParameter("a location operator needs --tenant", param_hint="--tenant")
    if role == "hq" and tenants:
        raise click.BadParameter("an hq operator sees every location", param_hint="--tenant")
    operator_id = uuid.uuid4()
    label, secret, hashes = _issue(token_account, operator_id)

    async def work(conn: Any) -> None:
        await add_operator(
            conn, email=email, role=role, tenant_ids=tenants, operator_id=operator_id, **hashes
        )

    try:
        _with_conn(work)
    except IntegrityError as exc:
        raise click.ClickException(
            f"operator {email} exists already, or a --tenant is no tenant"
        ) from exc
    scope = "every location" if role == "hq" else f"{len(tenants)} location(s)"
    click.echo(f"operator {email.strip().lower()} ({role}: {scope})")
    click.echo(f"{label} (shown once): {secret}")


@operators.command("list")
def operators_list() -> None:
    """List accounts (never a credential)."""
    from services.common.db.operators import list_operators

    rows = _with_conn(lambda conn: list_operators(conn))
    if not rows:
        click.echo("no operators; add one with `leadctl operators add EMAIL --role hq`")
    for o in rows:
        kind = "token" if o.token_hash else "password"
        seen = o.last_sign_in_at.isoformat(timespec="seconds") if o.last_sign_in_at else "never"
        tenants = ",".join(sorted(str(t) for t in o.tenant_ids)) or "-"
        click.echo(
            f"{o.email:40} {o.role:8} {'active' if o.active else 'disabled':8} {kind:8} "
            f"last sign-in {seen}  tenants {tenants}"
        )


def _set_active(email: str, active: bool) -> None:
    from services.common.db.operators import set_active

    found = _with_conn(lambda conn: set_active(conn, email=email, active=active))
    if found is None:
        raise click.ClickException(f"no operator {email}")
    state = "enabled" if active else "disabled (its sessions have ended)"
    click.echo(f"operator {found.email} {state}")


@operators.command("disable")
@click.argument("email")
def operators_disable(email: str) -> None:
    """Lock an account out; every session of it ends."""
    _set_active(email, False)


@operators.command("enable")
@click.argument("email")
def operators_enable(email: str) -> None:
    """Let a disabled account sign in again."""
    _set_active(email, True)


@operators.command("reset")
@click.argument("email")
def operators_reset(email: str) -> None:
    """A new password (or API token, for a token account), shown once; every session ends."""
    from services.common.db.operators import operator_by_email, set_credentials

    async def work(conn: Any) -> tuple[str, str] | None:
        found = await operator_by_email(conn, email=email)
        if found is None:
            return None
        label, secret, hashes = _issue(bool(found.token_hash), found.id)
        await set_credentials(conn, email=email, **hashes)
        return label, secret

    issued = _with_conn(work)
    if issued is None:
        raise click.ClickException(f"no operator {email}")
    click.echo(f"{issued[0]} of {email.strip().lower()} (shown once): {issued[1]}")
