"""`leadctl backfill --tenant ID --since TIME`: import a location's Shopmonkey order history
into `leads.order-events.v1` (source `backfill`), within a request rate, resumable (run the
same command again after an interruption), with progress. See leadctl/backfill_run.py."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import click
from pydantic import Field

from leadctl.replay_cmd import parse_time
from services.common.errors import ConfigError
from services.common.settings import CommonSettings, ShopmonkeySettings, load_settings


class BackfillSettings(CommonSettings, ShopmonkeySettings):
    #: Backfilled orders created longer ago than this get a lead but no touch points.
    backfill_plan_max_age_days: float = Field(default=30.0, ge=0)
    #: Shopmonkey requests per minute a backfill makes (its limit is ~100/min per API key).
    backfill_requests_per_minute: float = Field(default=60.0, ge=0)


async def run_backfill(
    settings: BackfillSettings,
    tenant_id: uuid.UUID,
    since: datetime,
    *,
    restart: bool,
    echo: bool = True,
) -> tuple[int, int, int]:
    """Returns (orders read in total, orders this run, orders without touch points)."""
    from leadctl.backfill_run import Backfill, CursorStore, RateLimiter, ThrottledClient
    from services.common.db.engine import async_engine
    from services.common.kafka.producer import KafkaProducer
    from services.ingest.adapters.customer_cache import CachedCustomers
    from services.ingest.adapters.publisher_kafka import KafkaEventPublisher
    from services.ingest.adapters.shopmonkey_client import RetryPolicy
    from services.ingest.adapters.tenants_pg import PostgresTenants

    engine = async_engine(settings.sqlalchemy_url, pool_size=2)
    producer = KafkaProducer(settings.kafka_bootstrap_servers, client_id="backfill").start()
    limiter = RateLimiter(settings.backfill_requests_per_minute)
    client = ThrottledClient(
        settings.shopmonkey_api_base_url,
        timeout=settings.shopmonkey_timeout_seconds,
        limiter=limiter,
    )
    await client.start()
    try:
        tenant = await PostgresTenants(engine, ttl=0).get(tenant_id)
        if tenant is None:
            raise click.ClickException(f"no active tenant {tenant_id}")
        backfill = Backfill(
            tenant=tenant,
            since=since,
            client=client,
            customers=CachedCustomers(client, ttl=3600.0, deadline=None, retry=RetryPolicy()),
            publisher=KafkaEventPublisher(
                producer, topic=settings.topics.order_events, timeout=60.0
            ),
            cursors=CursorStore(engine),
            max_age=timedelta(days=settings.backfill_plan_max_age_days),
            demo_mode=settings.demo_mode,
            whitelist=settings.whitelist,
        )
        before = await backfill.cursor()
        if before is not None and before.status == "done" and not restart:
            if echo:
                click.echo(
                    f"backfill of {tenant_id} since {since.isoformat()} already complete "
                    f"({before.produced} orders); --restart to run it again"
                )
            return before.produced, 0, 0
        already = 0 if restart or before is None else before.produced
        total = await backfill.total()
        if echo and already:
            click.echo(f"resuming after {already} orders ({before.pages if before else 0} pages)")
        if echo:
            length = max(total or 0, already)
            with click.progressbar(
                length=length, label=f"backfill {tenant_id}", show_pos=True
            ) as bar:
                bar.update(already)
                final = await backfill.run(restart=restart, on_page=bar.update)
        else:
            final = await backfill.run(restart=restart)
        this_run = final.produced - already
        if echo:
            click.echo(
                f"done: {final.produced} orders since {since.isoformat()} "
                f"({this_run} this run, {final.pages} pages), "
                f"{backfill.unplanned} older than {settings.backfill_plan_max_age_days:g} days "
                f"without touch points, {backfill.dropped} dropped by DEMO_MODE"
            )
        return final.produced, this_run, backfill.unplanned
    finally:
        await client.close()
        await asyncio.to_thread(producer.close)
        await engine.dispose()


def _absolute(text: str) -> bool:
    try:
        datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


@click.command("backfill")
@click.option("--tenant", "tenant_id", type=click.UUID, required=True, help="Tenant (location).")
@click.option("--since", "since_text", required=True, help="ISO time, or a duration (90d).")
@click.option("--restart", is_flag=True, help="Start over instead of resuming.")
@click.option(
    "--rate", type=float, default=None, help="Requests/min (BACKFILL_REQUESTS_PER_MINUTE)."
)
def backfill(tenant_id: uuid.UUID, since_text: str, restart: bool, rate: float | None) -> None:
    """Import a location's Shopmonkey order history (orders created since --since).

    Safe to re-run: it resumes where an interrupted run stopped, and every order keeps the
    event id the webhook and poller give it, so nothing is counted twice. History older than
    BACKFILL_PLAN_MAX_AGE_DAYS creates leads without planning touch points."""
    since = parse_time(since_text)
    if not _absolute(since_text):
        # a duration would name a new backfill on every run: anchor it to the UTC day
        since = since.replace(hour=0, minute=0, second=0, microsecond=0)
    click.echo(f"backfill since {since.isoformat()} (re-run with the same --since to resume)")
    overrides: dict[str, object] = {}
    if rate is not None:
        overrides["backfill_requests_per_minute"] = rate
    try:
        settings = load_settings(BackfillSettings, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    asyncio.run(run_backfill(settings, tenant_id, since, restart=restart))
