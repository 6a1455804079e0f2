"""`leadctl replay`: rewind the sequencer's consumer group to a time, in place (admin API).

Why in place and not a fresh versioned group: a per-tenant replay must leave every other
tenant's state untouched; a fresh group with fresh tables would rebuild (and re-emit) every
tenant. The rewind moves the group's committed offsets on the sequencer's source topics (order
events, touch-point outcomes, contact signals) back to `--since`; a `replay_runs` row tells the
sequencer which records are replayed (offsets below `end_offsets`, for the chosen tenants): it
emits their commands `record_only`, and outbound records them without calling a provider.

Dry-run by default, like `kafka-consumer-groups --reset-offsets`. Per partition, the
replayed range is [offset at --since, min(offset at --until or the end, committed offset)):
a group is never moved forward, and records it had not processed yet stay normal records.
With `--until`, the group still re-reads the records between --until and its committed
offset (it cannot skip them); they are processed as normal records again, which the
sequencer's event-id dedupe and outbound's ledger make harmless.
With `--tenant`, only the partitions those tenants hash to are rewound.
"""

from __future__ import annotations

import os
import uuid
from datetime import datetime

import click

from leadctl.replay.execute import execute as execute_replay
from leadctl.replay.execute import refuse_unfinished
from leadctl.replay.kafka import KafkaView
from leadctl.replay.plan import ReplayPlan, build_plan
from leadctl.tables import format_table
from leadctl.times import parse_time
from services.common.errors import ConfigError
from services.common.kafka.startup import verify_connection
from services.common.settings import CommonSettings, load_settings

SEQUENCER_APP_ID = "lead-sequencer"


def sequencer_group(settings: CommonSettings) -> str:
    """The sequencer's Faust app id = its consumer group (behind the topic prefix)."""
    from services.sequencer.settings import SequencerSettings

    try:
        return str(load_settings(SequencerSettings).app_id)
    except ConfigError:
        app = os.environ.get("SEQUENCER_APP_ID") or SEQUENCER_APP_ID
        return f"{settings.kafka_topic_prefix}{app}"


def source_topics(settings: CommonSettings) -> list[str]:
    t = settings.topics
    return [t.order_events, t.touchpoint_outcomes, t.contact_signals]


# planning ---------------------------------------------------------------------------------------
def make_plan(
    view: KafkaView,
    settings: CommonSettings,
    *,
    group: str,
    since: datetime,
    until: datetime | None,
    tenants: tuple[uuid.UUID, ...],
    scan_limit: int,
) -> ReplayPlan:
    tps = view.partitions(source_topics(settings))
    plan = build_plan(
        group,
        watermarks=view.watermarks(tps),
        committed=view.committed(group, tps),
        since=view.offsets_at(tps, since),
        until=view.offsets_at(tps, until) if until else None,
        tenants=tenants,
    )
    if tenants:
        keys = {str(t) for t in tenants}
        for part in plan.rewound:
            counts, scanned = view.count_keys(part.tp, part.start, part.end, scan_limit)
            found = sum(n for k, n in counts.items() if k in keys)
            if scanned < part.rereads and scanned:
                part.tenant_events = round(found * part.rereads / scanned)
                part.estimated = True
            else:
                part.tenant_events = found
    return plan


def render(plan: ReplayPlan) -> str:
    headers = ["topic", "part", "committed", "from", "to", "re-read"]
    if plan.tenants:
        headers.append("tenant events")
    headers.append("note")
    rows: list[list[object]] = []
    for p in plan.partitions:
        row: list[object] = [
            p.tp[0],
            p.tp[1],
            "-" if p.committed is None else p.committed,
            p.start if p.selected else "-",
            p.end if p.selected else "-",
            p.rereads,
        ]
        if plan.tenants:
            count = p.tenant_events
            row.append("-" if count is None else f"~{count}" if p.estimated else str(count))
        row.append(p.note)
        rows.append(row)
    lines = [format_table(headers, rows)]
    lines.append(f"  total: {plan.total} event(s) re-read on {len(plan.rewound)} partition(s)")
    if plan.tenants:
        estimated = any(p.estimated for p in plan.partitions)
        lines.append(
            f"  of which the chosen tenant(s): {'~' if estimated else ''}{plan.tenant_total}"
            + (" (estimated from a capped scan, see --scan-limit)" if estimated else "")
            + "; other tenants' records in the range are skipped by the sequencer"
        )
    return "\n".join(lines)


@click.command("replay")
@click.option("--since", "since_text", required=True, help="ISO time, 'beginning', or 2h/7d ago.")
@click.option(
    "--until", "until_text", default=None, help="End of the replayed range (default: now)."
)
@click.option(
    "--tenant", "tenants", type=click.UUID, multiple=True, help="Only this tenant (repeat)."
)
@click.option("--group", default=None, help="Sequencer group (default: <prefix>lead-sequencer).")
@click.option("--execute", is_flag=True, help="Do it (default: dry run, nothing changes).")
@click.option("--wait-for-stop", is_flag=True, help="Wait until the sequencer left its group.")
@click.option("--wait-timeout", type=float, default=300.0, show_default=True)
@click.option("--follow/--no-follow", default=True, show_default=True, help="Progress + summary.")
@click.option("--timeout", type=float, default=3600.0, show_default=True, help="Follow at most.")
@click.option(
    "--scan-limit",
    type=int,
    default=200_000,
    show_default=True,
    help="Records scanned per partition to count a tenant's events (beyond: estimated).",
)
@click.option("--outbound-group", default=None, help="Outbound's group (OUTBOUND_GROUP_ID).")
@click.option("--outbound-timeout", type=float, default=120.0, show_default=True)
@click.option(
    "--settle-timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="After the group passed the end, wait this long for the sequencer to close the run.",
)
def replay(
    since_text: str,
    until_text: str | None,
    tenants: tuple[uuid.UUID, ...],
    group: str | None,
    execute: bool,
    wait_for_stop: bool,
    wait_timeout: float,
    follow: bool,
    timeout: float,
    scan_limit: int,
    outbound_group: str | None,
    outbound_timeout: float,
    settle_timeout: float,
) -> None:
    """Re-read the sequencer's input from --since (all tenants, or --tenant …) without
    contacting anyone twice: replayed commands are record-only and the ledger dedupes them.

    \b
    1. leadctl replay --since 2026-05-01T00:00Z [--tenant ID]   # dry run: what would be re-read
    2. stop every `leadctl sequencer` (it must leave its consumer group)
    3. leadctl replay --since 2026-05-01T00:00Z [--tenant ID] --execute
    4. start `leadctl sequencer` again: the progress bar follows it, then a summary
    """
    from services.common.db.engine import sync_engine

    since = parse_time(since_text)
    until = parse_time(until_text) if until_text else None
    if until is not None and until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    try:
        settings = load_settings(CommonSettings)
        verify_connection(settings.kafka)  # refused settings: an error naming them
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    group = group or sequencer_group(settings)
    view = KafkaView(settings.kafka)
    try:
        plan = make_plan(
            view,
            settings,
            group=group,
            since=since,
            until=until,
            tenants=tuple(tenants),
            scan_limit=scan_limit,
        )
        scope = ", ".join(map(str, tenants)) if tenants else "all tenants"
        click.echo(f"Replay of group {group!r} from {since.isoformat()} ({scope}):")
        click.echo(render(plan))
        if not execute:
            click.echo("Dry run: nothing changed. Add --execute to rewind the group.")
            return
        engine = sync_engine(settings.sqlalchemy_url, pool_size=1)
        try:
            refuse_unfinished(view, engine, group)
            if not plan.rewound:
                click.echo("Nothing to replay.")
                return
            execute_replay(
                view,
                settings,
                engine,
                plan,
                since=since,
                until=until,
                wait_for_stop=wait_for_stop,
                wait_timeout=wait_timeout,
                follow_on=follow,
                timeout=timeout,
                outbound_group=outbound_group or os.environ.get("OUTBOUND_GROUP_ID") or "outbound",
                outbound_timeout=outbound_timeout,
                settle_timeout=settle_timeout,
            )
        finally:
            engine.dispose()
    finally:
        view.close()
