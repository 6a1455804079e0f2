"""`leadctl plans show|set|diff`: the plan a tenant's leads follow, per campaign (`nurture`,
`declined`, `review`, `appointment`), as YAML. `set` validates a file (the format, the step
order and offsets, the templates of every channel a step may take) and stores it as a new
version in force from now (earlier events keep the version of their time, DESIGN §12); a bad
file changes nothing. `diff` shows what `set` would change."""

from __future__ import annotations

import asyncio
import difflib
import getpass
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click
from sqlalchemy.ext.asyncio import AsyncConnection

from leadctl.plans.store import NoTenant, Stored, Version, campaign_plans_with, store, stored
from leadctl.plans.validate import (
    KINDS,
    NURTURE,
    PlanFileError,
    load_yaml,
    normalised,
    parsed,
    to_yaml,
)
from services.common.settings import CommonSettings, load_settings
from services.sequencer.domain.campaigns import (
    NO_CAMPAIGNS,
    Campaign,
    CampaignPlanError,
    campaign_document,
    parse_campaigns,
)
from services.sequencer.domain.plan import DEFAULT_PLAN, plan_document

R = TypeVar("R")

TENANT = click.option("--tenant", "tenant_id", type=click.UUID, required=True, help="Tenant id.")
FILE = click.option(
    "--file", "plan_file", type=click.File("r"), required=True, help="The plan (YAML; - stdin)."
)


def _campaign(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--campaign",
        type=click.Choice(KINDS),
        required=required,
        help="nurture (the estimate's plan) or a campaign.",
    )


@click.group("plans")
def plans() -> None:
    """A tenant's nurture and campaign plans: show, set (a new version), diff."""


def _run(work: Callable[[AsyncConnection], Awaitable[R]], *, write: bool = False) -> R:
    from services.common.db.engine import async_engine

    settings = load_settings(CommonSettings)

    async def go() -> R:
        engine = async_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
        try:
            async with engine.begin() if write else engine.connect() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(go())
    except NoTenant as exc:
        raise click.ClickException(str(exc)) from None


def default_document(kind: str) -> dict[str, Any]:
    if kind == NURTURE:
        return plan_document(DEFAULT_PLAN)
    return campaign_document(NO_CAMPAIGNS.of(Campaign(kind)))


def in_force(kind: str, have: Stored) -> tuple[dict[str, Any], str]:
    """(the normalised plan the sequencer follows now, a line saying what it is)."""
    if have.row is None:
        if kind == NURTURE:
            return default_document(kind), "the default plan (none set)"
        return default_document(kind), (
            "the default plan, off (none set; `enabled: true` in a plan file turns it on)"
        )
    try:
        plan = parsed(kind, have.row)
    except PlanFileError as exc:
        fallback = "the default plan" if kind == NURTURE else "off"
        return default_document(kind), f"{fallback}: the stored plan is invalid ({exc})"
    document = (
        plan_document(plan) if kind == NURTURE else campaign_document(plan)  # type: ignore[arg-type]
    )
    version = have.current
    if version is None:
        return document, "set in the tenant's row, outside `leadctl plans` (no version)"
    return document, _version_line(version)


def _version_line(v: Version) -> str:
    return f"version {v.version}, set {v.valid_from.isoformat(timespec='seconds')} by {v.set_by}"


def _read_file(kind: str, plan_file: Any) -> dict[str, Any]:
    source = getattr(plan_file, "name", "plan file")
    try:
        return normalised(kind, load_yaml(plan_file.read()))
    except PlanFileError as exc:
        raise click.ClickException(f"{source}: invalid plan, nothing changed: {exc}") from None


@plans.command("show")
@TENANT
@_campaign(required=False)
def show(tenant_id: uuid.UUID, campaign: str | None) -> None:
    """Print the plan in force (YAML): its version, or the default when none is set."""
    kinds = (campaign,) if campaign else KINDS

    async def work(conn: AsyncConnection) -> list[tuple[str, Stored]]:
        return [(k, await stored(conn, tenant_id, k)) for k in kinds]

    found = _run(work)
    for n, (kind, have) in enumerate(found):
        document, what = in_force(kind, have)
        if n:
            click.echo("---")
        click.echo(f"# tenant {tenant_id} ({have.tenant_name}), campaign {kind}")
        click.echo(f"# in force: {what}")
        earlier = [v for v in have.versions if v is not have.current]
        for v in earlier[-5:]:
            click.echo(f"# earlier: {_version_line(v)}")
        click.echo(to_yaml(document), nl=False)


@plans.command("diff")
@TENANT
@_campaign(required=True)
@FILE
def diff(tenant_id: uuid.UUID, campaign: str, plan_file: Any) -> None:
    """What `set` would change against the version in force (nothing is stored)."""
    new = _read_file(campaign, plan_file)

    async def work(conn: AsyncConnection) -> Stored:
        return await stored(conn, tenant_id, campaign)

    have = _run(work)
    current, what = in_force(campaign, have)
    before, after = to_yaml(current), to_yaml(new)
    if before == after:
        click.echo(f"no change: {plan_file.name} is the {campaign} plan in force ({what})")
        return
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"{campaign} in force: {what}",
        tofile=str(plan_file.name),
    )
    click.echo("".join(lines), nl=False)


@plans.command("set")
@TENANT
@_campaign(required=True)
@FILE
@click.option("--by", "set_by", default=None, help="Who sets it (default: $USER).")
def set_plan(tenant_id: uuid.UUID, campaign: str, plan_file: Any, set_by: str | None) -> None:
    """Validate a plan file and store it as a new version, in force from now."""
    new = _read_file(campaign, plan_file)
    by = set_by or os.environ.get("USER") or _user()

    async def work(conn: AsyncConnection) -> tuple[Version | None, Stored, str | None]:
        have = await stored(conn, tenant_id, campaign, lock=True)
        current, _ = in_force(campaign, have)
        if have.current is not None and current == new:
            return None, have, None  # the same plan again: no new version
        warning = None
        if campaign != NURTURE:
            try:
                parse_campaigns(await campaign_plans_with(conn, tenant_id, campaign, new))
            except CampaignPlanError as exc:
                warning = (
                    f"another campaign's stored plan is invalid, every campaign stays off: {exc}"
                )
        return await store(conn, tenant_id, campaign, new, by), have, warning

    version, have, warning = _run(work, write=True)
    if version is None:
        assert have.current is not None
        click.echo(f"unchanged: {campaign} is already {_version_line(have.current)}")
        return
    click.echo(
        f"tenant {tenant_id} ({have.tenant_name}): {campaign} plan {_version_line(version)}; "
        "in force for events from now on (earlier events keep the version of their time)"
    )
    if warning:
        click.secho(f"warning: {warning}", fg="yellow", err=True)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "leadctl"
