"""`leadctl status`: what runs and how it is doing, in one screen (or `--json`).

Health of each service (`/healthz`, `/readyz` on its configured port), consumer lag per group
and partition, dead-letter counts, leads by state, touch points of the last hours by status and
reason, and recent errors (poller cursors, failed/unknown sends, messages the providers reported
undelivered). A section whose source does not answer says so; the others are still shown.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from leadctl.main import run_async
from services.common.errors import ConfigError
from services.common.settings import CommonSettings, load_settings

#: Recent-error rows shown per kind.
ERROR_ROWS = 10
#: A 'claimed' ledger row older than this was probably left by a crashed outbound.
STUCK_AFTER = timedelta(minutes=5)


# formatting ------------------------------------------------------------------------------------
def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  "
) -> str:
    """Left-aligned columns; numbers right-aligned."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) for r in rows) for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def section(title: str) -> None:
    click.echo()
    click.echo(click.style(title, bold=True))


# services --------------------------------------------------------------------------------------
def service_ports() -> dict[str, int | str]:
    """Each service's port from its own settings (a broken setting is reported, not fatal)."""
    from services.ingest.settings import IngestSettings
    from services.outbound.settings import OutboundSettings
    from services.sequencer.settings import SequencerSettings

    ports: dict[str, int | str] = {}
    for name, cls, field in (
        ("ingest", IngestSettings, "webhook_port"),
        ("poller", IngestSettings, "poller_port"),
        ("sequencer", SequencerSettings, "sequencer_port"),
        ("outbound", OutboundSettings, "outbound_port"),
    ):
        try:
            ports[name] = int(getattr(load_settings(cls), field))
        except ConfigError as exc:
            ports[name] = str(exc)
    return ports


async def probe_service(
    name: str, host: str, port: int | str, probe_seconds: float
) -> dict[str, Any]:
    import aiohttp

    if isinstance(port, str):
        return {"service": name, "url": None, "up": False, "ready": None, "error": port}
    base = f"http://{host}:{port}"
    out: dict[str, Any] = {"service": name, "url": base, "up": False, "ready": None}
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=probe_seconds)
        ) as http:
            async with http.get(f"{base}/healthz") as res:
                out["up"] = res.status == 200
                out["ms"] = round((time.perf_counter() - started) * 1000, 1)
                if not out["up"]:
                    out["error"] = f"/healthz answered {res.status}"
                    return out
            async with http.get(f"{base}/readyz") as res:
                body = await res.json(content_type=None) if res.status in (200, 503) else {}
                out["ready"] = res.status == 200
                out["checks"] = body.get("checks", {}) if isinstance(body, dict) else {}
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        out["error"] = "not listening (connection refused)" if refused else str(exc.os_error)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        out["error"] = str(exc) or exc.__class__.__name__
    return out


# kafka -----------------------------------------------------------------------------------------
async def kafka_facts(
    settings: CommonSettings, groups: Sequence[str], kafka_seconds: float
) -> dict[str, Any]:
    from services.common.kafka.lag import consumer_lag, dlq_counts

    bootstrap, topics = settings.kafka_bootstrap_servers, settings.topics
    lag, dlq = await asyncio.gather(
        asyncio.to_thread(
            consumer_lag, bootstrap, topics, groups=list(groups) or None, timeout=kafka_seconds
        ),
        asyncio.to_thread(dlq_counts, bootstrap, topics, timeout=kafka_seconds),
        return_exceptions=True,  # confluent raises KafkaException and bare timeouts alike
    )
    out: dict[str, Any] = {}
    if isinstance(lag, BaseException):
        out["lag_error"] = _first_line(lag)
    else:
        out["lag"] = [asdict(r) | {"lag": r.lag} for r in lag]
    if isinstance(dlq, BaseException):
        out["dlq_error"] = _first_line(dlq)
    else:
        out["dlq"] = dlq
    return out


# database --------------------------------------------------------------------------------------
LEADS_SQL = "SELECT state, count(*) FROM leads GROUP BY state"
TOUCHES_SQL = """
SELECT status, coalesce(nullif(split_part(reason, ':', 1), ''), '-') AS reason, channel,
       count(*)
FROM job_executions
WHERE status IN ('claimed', 'sent', 'skipped', 'deferred', 'failed', 'unknown', 'recorded')
  AND claimed_at >= :since
GROUP BY 1, 2, 3
"""
POLLER_ERRORS_SQL = """
SELECT t.name, c.tenant_id, c.kind, c.last_error, c.last_error_at, c.last_success_at
FROM poller_cursors c JOIN tenants t ON t.id = c.tenant_id
WHERE c.last_error IS NOT NULL
ORDER BY c.last_error_at DESC NULLS LAST
LIMIT :limit
"""
FAILED_SENDS_SQL = """
SELECT coalesce(j.decided_at, j.claimed_at) AS at, j.status, j.channel, j.reason,
       j.lead_id, t.name
FROM job_executions j LEFT JOIN tenants t ON t.id = j.tenant_id
WHERE j.status IN ('failed', 'unknown') AND j.claimed_at >= :since
ORDER BY j.claimed_at DESC
LIMIT :limit
"""
#: Delivery reports that say the message did not arrive (SendGrid and Twilio status words).
DELIVERY_FAILURES = ("bounced", "blocked", "dropped", "undelivered", "failed")
DELIVERY_FAILURES_SQL = f"""
SELECT j.delivery_updated_at AS at, j.channel, j.delivery_status, j.delivery_error,
       j.lead_id, t.name
FROM job_executions j LEFT JOIN tenants t ON t.id = j.tenant_id
WHERE j.status = 'sent' AND j.delivery_status IN ({", ".join(f"'{d}'" for d in DELIVERY_FAILURES)})
  AND j.delivery_updated_at >= :since
ORDER BY j.delivery_updated_at DESC
LIMIT :limit
"""
STUCK_SQL = """
SELECT count(*) FROM job_executions WHERE status = 'claimed' AND claimed_at < :before
"""


async def database_facts(settings: CommonSettings, hours: float) -> dict[str, Any]:
    from sqlalchemy import text

    from services.common.db.engine import async_engine

    now = datetime.now(UTC)
    since = now - timedelta(hours=hours)
    engine = async_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
    out: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SET LOCAL statement_timeout = 15000"))
            leads = await conn.execute(text(LEADS_SQL))
            out["leads_by_state"] = {state: int(n) for state, n in leads}
            touches = await conn.execute(text(TOUCHES_SQL), {"since": since})
            out["touchpoints"] = [
                {"status": s, "reason": r, "channel": c, "count": int(n)} for s, r, c, n in touches
            ]
            poller = await conn.execute(text(POLLER_ERRORS_SQL), {"limit": ERROR_ROWS})
            out["poller_errors"] = [
                {
                    "tenant": name,
                    "tenant_id": str(tid),
                    "kind": kind,
                    "error": err,
                    "at": _iso(at),
                    "last_success_at": _iso(ok),
                }
                for name, tid, kind, err, at, ok in poller
            ]
            failed = await conn.execute(
                text(FAILED_SENDS_SQL), {"since": now - timedelta(days=7), "limit": ERROR_ROWS}
            )
            out["failed_sends"] = [
                {
                    "at": _iso(at),
                    "status": status,
                    "channel": channel,
                    "reason": reason,
                    "lead_id": str(lead),
                    "tenant": name,
                }
                for at, status, channel, reason, lead, name in failed
            ]
            undelivered = await conn.execute(
                text(DELIVERY_FAILURES_SQL), {"since": now - timedelta(days=7), "limit": ERROR_ROWS}
            )
            out["delivery_failures"] = [
                {
                    "at": _iso(at),
                    "channel": channel,
                    "delivery_status": status,
                    "error": error,
                    "lead_id": str(lead),
                    "tenant": name,
                }
                for at, channel, status, error, lead, name in undelivered
            ]
            stuck = await conn.execute(text(STUCK_SQL), {"before": now - STUCK_AFTER})
            out["stuck_claims"] = int(stuck.scalar_one())
    except Exception as exc:  # unreachable, auth, missing schema: one line, other sections go on
        out["database_error"] = _first_line(exc)
    finally:
        await engine.dispose()
    return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]


# report ----------------------------------------------------------------------------------------
async def gather_status(
    settings: CommonSettings,
    *,
    host: str,
    groups: Sequence[str],
    hours: float,
    probe_seconds: float,
    kafka_seconds: float = 8.0,
) -> dict[str, Any]:
    ports = service_ports()
    probes = [probe_service(name, host, port, probe_seconds) for name, port in ports.items()]
    *services, kafka, db = await asyncio.gather(
        *probes, kafka_facts(settings, groups, kafka_seconds), database_facts(settings, hours)
    )
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "window_hours": hours,
        "services": services,
        **kafka,
        **db,
    }


def _short_time(iso: str | None) -> str:
    return iso[:19].replace("T", " ") if iso else "-"


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
                ["POLLER", "TENANT", "KIND", "AT", "ERROR"],
                [
                    ["poller", p["tenant"], p["kind"], _short_time(p["at"]), p["error"][:90]]
                    for p in poller
                ],
            )
        )
    if sends:
        click.echo(
            format_table(
                ["SEND", "AT", "CHANNEL", "LEAD", "TENANT", "REASON"],
                [
                    [
                        f["status"],
                        _short_time(f["at"]),
                        f["channel"],
                        f["lead_id"],
                        f["tenant"],
                        (f["reason"] or "")[:70],
                    ]
                    for f in sends
                ],
            )
        )
    if undelivered:
        click.echo(
            format_table(
                ["DELIVERY", "AT", "CHANNEL", "LEAD", "TENANT", "ERROR"],
                [
                    [
                        d["delivery_status"],
                        _short_time(d["at"]),
                        d["channel"],
                        d["lead_id"],
                        d["tenant"],
                        (d["error"] or "-")[:70],
                    ]
                    for d in undelivered
                ],
            )
        )


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--host", default="localhost", show_default=True, help="Where the services listen.")
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Only this consumer group (repeatable; default: every group on our topics).",
)
@click.option("--hours", type=float, default=24.0, show_default=True, help="Touch-point window.")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Per health probe.")
@click.option(
    "--kafka-timeout", type=float, default=8.0, show_default=True, help="Per Kafka admin call."
)
def status(
    as_json: bool,
    host: str,
    groups: tuple[str, ...],
    hours: float,
    timeout: float,
    kafka_timeout: float,
) -> None:
    """Health of each service, consumer lag, DLQs, leads by state, touch points, recent errors."""
    settings = load_settings(CommonSettings)

    async def go() -> dict[str, Any]:
        return await gather_status(
            settings,
            host=host,
            groups=groups,
            hours=hours,
            probe_seconds=timeout,
            kafka_seconds=kafka_timeout,
        )

    report = run_async(go)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_status(report)
