"""`leadctl status` on screen: one section per source, each saying when its source did not
answer."""

from __future__ import annotations

from typing import Any

import click

from leadctl.tables import format_table, section, short_time


def print_status(report: dict[str, Any]) -> None:
    from services.common.db.models import LEAD_STATES

    section("Services")
    rows = []
    for s in report["services"]:
        if s["up"]:
            state = "up"
            ready = "ready" if s.get("ready") else "NOT READY"
            failing = [k for k, ok in (s.get("checks") or {}).items() if not ok]
            detail = f"{s.get('ms', '')} ms" + (
                f"  failing: {', '.join(failing)}" if failing else ""
            )
        else:
            state, ready, detail = "DOWN", "-", s.get("error", "")
        rows.append([s["service"], state, ready, s.get("url") or "-", detail])
    click.echo(format_table(["SERVICE", "HEALTH", "READY", "URL", "DETAIL"], rows))

    section("Consumer lag (group / topic / partition)")
    if "lag_error" in report:
        click.echo(f"  Kafka unavailable: {report['lag_error']}")
    elif not report.get("lag"):
        click.echo("  no consumer group has committed offsets on this environment's topics")
    else:
        lag = sorted(report["lag"], key=lambda r: (r["group"], r["topic"], r["partition"]))
        click.echo(
            format_table(
                ["GROUP", "TOPIC", "PARTITION", "COMMITTED", "END", "LAG"],
                [
                    [
                        r["group"],
                        r["topic"],
                        r["partition"],
                        max(r["committed"], 0),
                        r["end"],
                        r["lag"],
                    ]
                    for r in lag
                ],
            )
        )
        totals: dict[str, int] = {}
        for r in lag:
            totals[r["group"]] = totals.get(r["group"], 0) + r["lag"]
        click.echo("  total: " + ", ".join(f"{g} {n}" for g, n in totals.items()))

    section("Dead-letter topics")
    if "dlq_error" in report:
        click.echo(f"  Kafka unavailable: {report['dlq_error']}")
    else:
        dlq = report.get("dlq", {})
        click.echo(format_table(["TOPIC", "RECORDS"], sorted(dlq.items())) if dlq else "  none")

    if "database_error" in report:
        section("Database")
        click.echo(f"  PostgreSQL unavailable: {report['database_error']}")
        return
    print_location_health(report.get("locations", []))

    section("Leads by state")
    by_state = report["leads_by_state"]
    states = [s for s in LEAD_STATES] + sorted(set(by_state) - set(LEAD_STATES))
    click.echo(
        format_table(
            [*(s.upper() for s in states), "TOTAL"],
            [[*(by_state.get(s, 0) for s in states), sum(by_state.values())]],
        )
    )

    section(f"Touch points, last {report['window_hours']:g} h (status / reason)")
    touches = report["touchpoints"]
    if not touches:
        click.echo("  none")
    else:
        merged: dict[tuple[str, str], dict[str, int]] = {}
        for t in touches:
            merged.setdefault((t["status"], t["reason"]), {})[t["channel"]] = t["count"]
        rows = [
            [s, r, ch.get("email", 0), ch.get("sms", 0), sum(ch.values())]
            for (s, r), ch in sorted(merged.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        ]
        click.echo(format_table(["STATUS", "REASON", "EMAIL", "SMS", "TOTAL"], rows))
    if report.get("stuck_claims"):
        click.echo(f"  ! {report['stuck_claims']} touch points claimed > 5 min ago and undecided")

    section("Recent errors")
    poller, sends = report["poller_errors"], report["failed_sends"]
    undelivered = report.get("delivery_failures", [])
    if not poller and not sends and not undelivered:
        click.echo("  none")
    if poller:
        click.echo(
            format_table(
                ["POLLER", "COMPANY", "KIND", "AT", "ERROR"],
                [
                    ["poller", p["company"], p["kind"], short_time(p["at"]), p["error"][:90]]
                    for p in poller
                ],
            )
        )
    if sends:
        click.echo(_ledger_table(sends, ("SEND", "status"), ("REASON", "reason"), empty=""))
    if undelivered:
        what, why = ("DELIVERY", "delivery_status"), ("ERROR", "error")
        click.echo(_ledger_table(undelivered, what, why, empty="-"))


def _ledger_table(
    rows: list[dict[str, Any]], what: tuple[str, str], why: tuple[str, str], *, empty: str
) -> str:
    """Send-ledger rows that went wrong: (header, key) of what happened and of why."""
    return format_table(
        [what[0], "AT", "CHANNEL", "LEAD", "TENANT", why[0]],
        [
            [
                r[what[1]],
                short_time(r["at"]),
                r["channel"],
                r["lead_id"],
                r["tenant"],
                (r[why[1]] or empty)[:70],
            ]
            for r in rows
        ],
    )


def print_location_health(locations: list[dict[str, Any]]) -> None:
    """Each location with what keeps it from sending (the section says when none has any)."""
    section("Locations: what keeps them from sending")
    troubled = [loc for loc in locations if loc["problems"]]
    if not troubled:
        click.echo(f"  none: {len(locations)} location(s), nothing missing")
        return
    for loc in troubled:
        click.echo(f"  {loc['name']} ({loc['tenant_id']})")
        for problem in loc["problems"]:
            click.echo(f"    ! {problem['text']}")
