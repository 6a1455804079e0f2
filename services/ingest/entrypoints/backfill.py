"""The backfill as the `leadctl backfill` command runs it: resume or start, a progress bar, a
summary line (see `service_layer.backfill`)."""

from __future__ import annotations

import uuid
from datetime import datetime

import click

from services.ingest.bootstrap import build_backfill
from services.ingest.errors import UnknownTenant
from services.ingest.settings import BackfillSettings


async def run_backfill(
    settings: BackfillSettings,
    tenant_id: uuid.UUID,
    since: datetime,
    *,
    restart: bool,
    echo: bool = True,
) -> tuple[int, int, int]:
    """Returns (orders read in total, orders this run, orders without touch points)."""
    try:
        async with build_backfill(settings, tenant_id, since) as backfill:
            before = await backfill.position()
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
                pages = before.pages if before else 0
                click.echo(f"resuming after {already} orders ({pages} pages)")
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
                    f"{backfill.unplanned} older than {settings.backfill_plan_max_age_days:g} "
                    f"days without touch points, {backfill.dropped} dropped by DEMO_MODE"
                )
            return final.produced, this_run, backfill.unplanned
    except UnknownTenant as exc:
        raise click.ClickException(exc.reason) from exc
