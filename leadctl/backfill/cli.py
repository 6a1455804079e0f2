"""`leadctl backfill --tenant ID --since TIME`: import a location's Shopmonkey order history
into `leads.order-events.v1` (source `backfill`), within a request rate, resumable (run the
same command again after an interruption), with progress."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import click

from leadctl.times import parse_time
from services.common.errors import ConfigError
from services.common.kafka.startup import check_kafka
from services.common.settings import load_settings
from services.ingest.entrypoints.backfill import run_backfill
from services.ingest.settings import BackfillSettings


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
        check_kafka(settings)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    asyncio.run(run_backfill(settings, tenant_id, since, restart=restart))
