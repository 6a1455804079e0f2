"""`leadctl replay --execute`: refuse while the sequencer runs or an earlier replay is
unfinished, record the run, rewind the group, follow the restarted sequencer with a progress
bar, and summarise what the replay did."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import click
from sqlalchemy import Engine

from leadctl.replay.kafka import KafkaView
from leadctl.replay.plan import ReplayPlan
from leadctl.replay.runs import create_run, get_run, merge_stats, open_runs, set_status
from leadctl.replay.summary import Summary, summarise
from services.common.domain.replay import OPEN, ReplayRun, tp_key
from services.common.settings import CommonSettings


def close_finished(view: KafkaView, engine: Engine, runs: list[ReplayRun]) -> list[ReplayRun]:
    """Mark earlier runs done when the group has passed their end offsets; return the rest."""
    still: list[ReplayRun] = []
    for run in runs:
        ends = run.partitions
        tps = list(ends)
        done = view.committed(run.app_group, tps) if tps else {}
        if all((done.get(tp) or 0) >= end for tp, end in ends.items()):
            set_status(engine, run.id, "done")
        else:
            still.append(run)
    return still


def refuse_unfinished(view: KafkaView, engine: Engine, group: str) -> None:
    unfinished = close_finished(view, engine, open_runs(engine, group))
    if unfinished:
        ids = ", ".join(str(r.id) for r in unfinished)
        raise click.ClickException(
            f"an earlier replay of {group!r} is still in progress ({ids}): let the "
            "sequencer finish it first"
        )


def ensure_stopped(view: KafkaView, group: str, *, wait: bool, wait_timeout: float) -> None:
    state = view.group_state(group)
    if not state.active:
        return
    how = (
        f"consumer group {group!r} is active ({state.state}, {len(state.members)} member(s): "
        f"{', '.join(state.members[:5])}).\nStop the sequencer first: stop every "
        "`leadctl sequencer` process (Ctrl-C, or SIGTERM to its pid; under `make run` / "
        "`leadctl run`, stop that), wait until it has left the group, then run this again — "
        "or pass --wait-for-stop to wait for it here."
    )
    if not wait:
        raise click.ClickException(how)
    click.echo(how.splitlines()[0] + " Waiting for it to stop …")
    deadline = time.monotonic() + wait_timeout
    while view.group_state(group).active:
        if time.monotonic() >= deadline:
            raise click.ClickException(f"{group!r} still active after {wait_timeout:.0f}s")
        time.sleep(1.0)


def follow(view: KafkaView, plan: ReplayPlan, *, timeout: float) -> bool:
    """Progress bar of the group's committed offsets against the end offsets."""
    ends = plan.end_offsets()
    starts = plan.new_offsets()
    tps = list(ends)
    total = sum(ends[tp] - starts[tp] for tp in tps)
    deadline = time.monotonic() + timeout
    shown = 0
    click.echo("Start the sequencer now (`leadctl sequencer`); following its progress …")
    with click.progressbar(length=total, label="replaying", show_pos=True) as bar:
        while True:
            done = view.committed(plan.group, tps)
            progress = sum(
                min(max((done.get(tp) or 0), starts[tp]), ends[tp]) - starts[tp] for tp in tps
            )
            if progress > shown:
                bar.update(progress - shown)
                shown = progress
            if progress >= total:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)


def print_summary(summary: Summary, stats: dict[str, Any]) -> None:
    click.echo("Replay summary:")
    tenant = (
        f" ({summary.tenant_events_reread} of the chosen tenants)"
        if summary.tenant_events_reread is not None
        else ""
    )
    click.echo(f"  events re-read:                {summary.events_reread}{tenant}")
    click.echo(
        f"  leads changed:                 {summary.leads_changed} "
        f"({summary.lead_changes} change record(s))"
    )
    click.echo(f"  commands re-emitted:           {summary.commands_reemitted} (record-only)")
    click.echo(f"  outbound skipped as done:      {summary.skipped_already_done}")
    click.echo(f"  outbound recorded, not sent:   {summary.recorded}")
    click.echo(f"  sent to a provider:            {summary.sent}")
    counters = {k: v for k, v in stats.items() if isinstance(v, int)}
    if counters:
        click.echo(
            "  sequencer's counters:          "
            + ", ".join(f"{k}={v}" for k, v in sorted(counters.items()))
        )
    if not summary.outbound_caught_up:
        click.echo("  (outbound had not read every re-emitted command yet: counts are partial)")


def execute(
    view: KafkaView,
    settings: CommonSettings,
    engine: Engine,
    plan: ReplayPlan,
    *,
    since: datetime,
    until: datetime | None,
    wait_for_stop: bool,
    wait_timeout: float,
    follow_on: bool,
    timeout: float,
    outbound_group: str,
    outbound_timeout: float,
    settle_timeout: float,
) -> None:
    ensure_stopped(view, plan.group, wait=wait_for_stop, wait_timeout=wait_timeout)
    run = create_run(
        engine,
        group=plan.group,
        tenants=plan.tenants,
        since=since,
        until=until,
        end_offsets=plan.end_offsets(),
    )
    try:
        view.alter(plan.group, plan.new_offsets())
    except Exception as exc:
        set_status(engine, run.id, "aborted", stats={"error": str(exc)[:500]})
        raise click.ClickException(f"could not rewind {plan.group!r}: {exc}") from exc
    set_status(engine, run.id, "running")
    click.echo(
        f"Replay run {run.id}: group {plan.group!r} rewound on {len(plan.rewound)} partition(s) "
        f"({', '.join(tp_key(p.tp) for p in plan.rewound[:6])}"
        f"{' …' if len(plan.rewound) > 6 else ''})."
    )
    if not follow_on:
        click.echo("Start the sequencer (`leadctl sequencer`) to replay.")
        return
    try:
        finished = follow(view, plan, timeout=timeout)
    except KeyboardInterrupt:
        click.echo(
            f"\nStopped following. Replay {run.id} goes on while the sequencer runs (it marks "
            "the run done); nothing is undone."
        )
        return
    if not finished:
        raise click.ClickException(
            f"replay {run.id} not finished after {timeout:.0f}s (it goes on when the "
            "sequencer runs; run status stays 'running')"
        )
    summary = summarise(
        view,
        settings.topics,
        started=run.created_at,
        tenants=plan.tenants or None,
        outbound_group=outbound_group,
        outbound_timeout=outbound_timeout,
    )
    summary.events_reread = plan.total
    summary.tenant_events_reread = plan.tenant_total
    # the sequencer marks the run done (and adds its counters) on its next replay poll
    deadline = time.monotonic() + settle_timeout
    while (row := get_run(engine, run.id)) is not None and row.status in OPEN:
        if time.monotonic() >= deadline:
            set_status(engine, run.id, "done")
            break
        time.sleep(1.0)
    merge_stats(engine, run.id, {"summary": summary.as_stats()})
    final = get_run(engine, run.id)
    print_summary(summary, final.stats if final else {})
