"""`leadctl simulate shopmonkey`: the Shopmonkey simulator as a process.

    leadctl simulate shopmonkey --port 3010 --companies 2,1 --seed 1 --orders 20 --rate 6 \\
        --webhook-url 'http://127.0.0.1:3000/webhooks/shopmonkey/companies/{company_id}/order' \\
        --state-file .local/run/shopmonkey.json

It (a) serves the v3 API subset on --port, (b) seeds companies (--companies: the number of
locations of each; or --tenants single-location ones) with --orders of history per location
and writes their ids, API keys and webhook secrets to --state-file (or inserts them as
companies and tenants with --provision), and (c) with --rate > 0 changes orders/customers over
time and sends each change as a signed, retried webhook to --webhook-url (per location, or
company-global when the URL names only {company_id}). Point ingest/poller at it with
SHOPMONKEY_API_BASE_URL=<url>/v3.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fakes.shopmonkey.data import Location, World
from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import WebhookSender

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from services.common.db.tenants import TenantRecord
    from services.common.secret_box import SecretBox

log = logging.getLogger("fakes.shopmonkey")


def delivery_url(url: str) -> str:
    """A URL template as is; a bare ingest base URL gets the per-tenant webhook path."""
    if "{" in url:
        return url
    return url.rstrip("/") + "/webhooks/shopmonkey/{tenant_id}/order"


def write_atomically(path: Path, text: str) -> None:
    """Readers never see a half-written file (they may poll for it to appear)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def seed_history(
    world: World, orders_per_tenant: int, history: timedelta, progress: float = 0.0
) -> None:
    """Orders created over the past `history` at each location, before the simulator started.
    `progress`: the share of them that moved on just before it started, half invoiced and
    paid (their declined services deferred), half authorized with an appointment booked."""
    now = datetime.now(UTC)
    for location in world.locations:
        company = location.company
        for _ in range(orders_per_tenant):
            created = now - history * world.rng.random()
            order = world.create_order(company, created_at=created, location=location)
            # (drawn only when asked for: other runs keep their sequences of records)
            roll = world.campaign_rng.random() if progress else 1.0
            if roll < progress / 2:
                while not order["paid"]:
                    order, _ = world.advance_order(company, order["id"])
            elif roll < progress:
                world.advance_order(company, order["id"])  # authorized
                world.create_appointment(company, order["id"])


async def add_simulated(
    conn: AsyncConnection, location: Location, *, box: SecretBox, **tenant: Any
) -> TenantRecord:
    """`location` as a tenant (`tenant`: its other columns), its company (API key, webhook
    secret, encrypted with `box`) added first when it is not there yet."""
    from services.common.db.companies import add_company, company_exists
    from services.common.db.tenants import add_tenant

    company = location.company
    if not await company_exists(conn, company_id=company.company_id):
        await add_company(
            conn,
            box=box,
            company_id=company.company_id,
            name=company.company_name,
            api_key=company.api_key,
            webhook_secret=company.webhook_secret,
            signature_scheme=company.signature_scheme,
        )
    record, _ = await add_tenant(
        conn,
        tenant_id=location.tenant_id,
        name=location.name,
        company_id=company.company_id,
        location_id=location.location_id,
        **tenant,
    )
    return record


@dataclass(frozen=True)
class Campaigns:
    """The --campaigns document: `tenants.campaign_plans` and the locations' review URL."""

    plans: dict[str, Any]
    review_url: str | None


def read_campaigns(path: Path) -> Campaigns:
    """The --campaigns document, checked as the sequencer would parse it (an invalid one would
    turn every campaign of the tenants off)."""
    from services.sequencer.domain.campaigns import CampaignPlanError, parse_campaigns

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise click.BadParameter(f"{path}: {e}", param_hint="--campaigns") from None
    if not isinstance(doc, dict):
        raise click.BadParameter(f"{path}: not a JSON object", param_hint="--campaigns")
    review_url = doc.pop("review_url", None)
    try:
        parse_campaigns(doc)
    except CampaignPlanError as e:
        raise click.BadParameter(f"{path}: {e}", param_hint="--campaigns") from None
    return Campaigns(doc, review_url)


async def provision_tenants(
    world: World,
    timezone: str = "America/New_York",
    campaigns: Campaigns | None = None,
) -> None:
    """Insert each simulated company (key, secret) and its locations as tenants, with
    `campaigns` (`tenants.campaign_plans`, and `review_url` if the document has one) when
    given; what already exists is kept."""
    from sqlalchemy.exc import IntegrityError

    from services.common.db.engine import async_engine
    from services.common.db.tenants import get_tenant, set_campaigns
    from services.common.settings import (
        CommonSettings,
        SecretsEncryptionSettings,
        load_settings,
    )

    class Settings(CommonSettings, SecretsEncryptionSettings):
        pass

    settings = load_settings(Settings)
    box = settings.secret_box
    engine = async_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        for location in world.locations:
            async with engine.begin() as conn:
                if await get_tenant(conn, tenant_id=location.tenant_id) is not None:
                    if campaigns is not None:
                        log.warning(
                            "tenant %s exists: kept as it is, --campaigns not applied",
                            location.tenant_id,
                        )
                    continue
                try:
                    await add_simulated(
                        conn,
                        location,
                        box=box,
                        postal_address=f"{location.name}, 1 Simulated Way, Springfield, IL",
                        timezone=timezone,
                    )
                    if campaigns is not None:
                        await set_campaigns(
                            conn,
                            tenant_id=location.tenant_id,
                            plans=campaigns.plans,
                            review_url=campaigns.review_url,
                        )
                except IntegrityError:
                    log.warning("tenant for %s exists under another id", location.location_id)
                    continue
            log.info("provisioned tenant %s (%s)", location.tenant_id, location.name)
    finally:
        await engine.dispose()


async def serve(
    *,
    host: str,
    port: int,
    world: World,
    sender: WebhookSender | None,
    rate: float,
    seed: int,
    state_file: Path | None,
    demo_story: bool = False,
) -> None:
    sim = await Simulator(world, sender=sender).start(host, port)
    log.info("Shopmonkey simulator on %s (API base %s)", sim.url, sim.api_base)
    for location in world.locations:
        log.info(
            "  tenant %s company %s location %s",
            location.tenant_id,
            location.company.company_id,
            location.location_id,
        )
    if state_file is not None:
        state = {
            "url": sim.url,
            "api_base": sim.api_base,
            "companies": [c.public() for c in world.companies],
        }
        await asyncio.to_thread(write_atomically, state_file, json.dumps(state, indent=2))
    sim.start_activity(rate, seed, demo_story=demo_story)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await sim.stop()


@click.command("shopmonkey")
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option(
    "--port", type=int, default=3010, show_default=True, help="API port (base URL <url>/v3)."
)
@click.option(
    "--tenants",
    type=int,
    default=3,
    show_default=True,
    help="Simulated single-location companies (one location = one tenant of ours).",
)
@click.option(
    "--companies",
    "layout",
    default=None,
    help="Companies by their number of locations, e.g. 2,1 (one company with two locations "
    "and one with one); overrides --tenants.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Deterministic data: the same seed gives the same tenant ids, API keys and secrets.",
)
@click.option(
    "--run-seed",
    type=int,
    default=None,
    help="Customers and orders of this run's own (ids, keys and secrets stay those of --seed).",
)
@click.option(
    "--orders", type=int, default=10, show_default=True, help="History: orders per location."
)
@click.option(
    "--history-hours",
    type=float,
    default=24.0,
    show_default=True,
    help="History orders are spread over this many past hours (no webhooks for them: the "
    "poller finds them).",
)
@click.option(
    "--history-progress",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of the history orders that moved on by now: half invoiced and paid (declined "
    "services deferred), half authorized with an appointment booked. The campaigns after "
    "an estimate have work from the start.",
)
@click.option(
    "--rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Live activity: changes per MINUTE over all tenants (60% new orders, 30% order "
    "advances, 10% customer phone changes), each sent as a signed webhook.",
)
@click.option(
    "--webhook-url",
    default=None,
    help="Where webhooks go: a template with {tenant_id}/{company_id}/{location_id} (one "
    "webhook per location; with {company_id} only, the company-global one: "
    "…/webhooks/shopmonkey/companies/{company_id}/order), or an ingest base URL "
    "(http://127.0.0.1:3000 → …/webhooks/shopmonkey/{tenant_id}/order). Without it no "
    "webhook is sent.",
)
@click.option(
    "--drop-rate",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of webhooks never sent (missed deliveries only the poller recovers).",
)
@click.option(
    "--demo-emails",
    default="",
    help="Comma-separated emails given to about half the new customers (DEMO_MODE demos).",
)
@click.option(
    "--demo-phone",
    default="",
    help="The phone of every customer given a demo email (listed in LEAD_PHONE_WHITELIST).",
)
@click.option(
    "--demo-story",
    is_flag=True,
    help="Also move a demo customer's unpaid order on at every other step (make run's demo: "
    "the campaigns after an estimate show within minutes).",
)
@click.option(
    "--provision",
    is_flag=True,
    help="Insert the companies (API key, webhook secret) and their locations as tenants into "
    "DATABASE_URL; existing ones are kept.",
)
@click.option(
    "--timezone",
    default="America/New_York",
    show_default=True,
    help="IANA zone of the --provision'ed tenants (their send windows are local to it).",
)
@click.option(
    "--campaigns",
    "campaigns_file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="With --provision: a JSON file of the new tenants' campaign plans, as "
    '`tenants.campaign_plans` holds them ({"declined": {"steps": [...]}, ...}), plus an '
    'optional "review_url". Set before the first webhook goes out, so every event of the '
    "run sees them.",
)
@click.option(
    "--state-file",
    "--tenants-file",
    "state_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Once the API serves, write JSON {url, api_base, companies: [{company_id, api_key, "
    "webhook_secret, signature_scheme, locations: [{tenant_id, location_id, name}], "
    "tenant_id/location_id/name of the first location, ...}]} here (atomically), e.g. for "
    "`make run` to register the tenants.",
)
def main(
    host: str,
    port: int,
    tenants: int,
    layout: str | None,
    seed: int,
    run_seed: int | None,
    orders: int,
    history_hours: float,
    history_progress: float,
    rate: float,
    webhook_url: str | None,
    drop_rate: float,
    demo_emails: str,
    demo_phone: str,
    demo_story: bool,
    provision: bool,
    timezone: str,
    campaigns_file: Path | None,
    state_file: Path | None,
) -> None:
    """Run a Shopmonkey v3 simulator (API subset + signed webhooks) for tests and demos."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    emails = tuple(e.strip() for e in demo_emails.split(",") if e.strip())
    try:
        counts = tuple(int(n) for n in layout.split(",")) if layout else None
    except ValueError:
        raise click.BadParameter(
            "a list of location counts, e.g. 2,1", param_hint="--companies"
        ) from None
    if counts is not None and not all(n >= 1 for n in counts):
        raise click.BadParameter(
            "every company has at least one location", param_hint="--companies"
        )
    world = World(
        seed=seed,
        tenants=tenants,
        layout=counts,
        demo_emails=emails,
        demo_phone=demo_phone.strip() or None,
        run_seed=run_seed,
    )
    seed_history(world, orders, timedelta(hours=history_hours), history_progress)
    campaigns = read_campaigns(campaigns_file) if campaigns_file else None
    if campaigns is not None and not provision:
        raise click.BadParameter("only with --provision", param_hint="--campaigns")
    sender = (
        WebhookSender(delivery_url(webhook_url), drop_rate=drop_rate, seed=seed)
        if webhook_url
        else None
    )

    async def go() -> None:
        if provision:
            await provision_tenants(world, timezone, campaigns)
        await serve(
            host=host,
            port=port,
            world=world,
            sender=sender,
            rate=rate,
            seed=seed,
            state_file=state_file,
            demo_story=demo_story,
        )

    asyncio.run(go())
