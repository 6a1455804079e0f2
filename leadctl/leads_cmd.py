"""`leadctl leads show ID`: one lead's story — its read-model row, its touch points (decision,
reason, provider ids, delivery) and its events from Kafka, in time order.

Kafka holds what happened (DESIGN §1); a lead's records all sit on its tenant's partition of
each topic (key = tenant id, murmur2 like aiokafka/Faust), so only that partition is read, from
`--since` to its end, and filtered by lead id. Customer contacts are masked unless the lead's
email is on LEAD_EMAIL_WHITELIST.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from leadctl.main import run_async
from leadctl.status_cmd import format_table, section
from services.common.masking import mask_email, mask_phone
from services.common.settings import CommonSettings, load_settings
from services.common.topics import Topics
from services.common.whitelist import is_whitelisted, normalize_email

#: Records read per topic at most (the newest ones before the end when there are more).
DEFAULT_MAX_SCAN = 200_000
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(raw: str, now: datetime) -> datetime:
    """`30d`, `12h`, `90m` (ago) or an ISO timestamp (UTC when it has no offset)."""
    m = _DURATION.match(raw.strip().lower())
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    try:
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise click.BadParameter(f"{raw!r}: use e.g. 7d, 12h or 2024-05-01T00:00") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def tenant_partition(tenant_id: uuid.UUID, partitions: int) -> int:
    """The partition of a tenant's records: Java/aiokafka/Faust murmur2 of the key."""
    from aiokafka.partitioner import murmur2

    return int((murmur2(str(tenant_id).encode()) & 0x7FFFFFFF) % partitions)


# masking ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Masker:
    """Contacts in full only for whitelisted (test) leads; everybody else's are masked."""

    whitelist: frozenset[str]
    lead_whitelisted: bool

    def email(self, value: str | None) -> str | None:
        if value is None:
            return None
        return value if is_whitelisted(value, self.whitelist) else mask_email(value)

    def phone(self, value: str | None) -> str | None:
        if value is None:
            return None
        return value if self.lead_whitelisted else mask_phone(value)

    def contact(self, value: str | None) -> str | None:
        if value is None:
            return None
        return self.email(value) if "@" in value else self.phone(value)


# database --------------------------------------------------------------------------------------
LEAD_SQL = """
SELECT l.*, t.name AS tenant_name FROM leads l LEFT JOIN tenants t ON t.id = l.tenant_id
WHERE l.lead_id = :lead
"""
JOBS_SQL = """
SELECT command_id, step_index, channel, template, recipient, status, reason, provider,
       provider_message_id, delivery_status, delivery_error, delivery_updated_at, record_only,
       attempts,
       due_at, deferred_until, claimed_at, decided_at
FROM job_executions WHERE tenant_id = :tenant AND lead_id = :lead
ORDER BY coalesce(decided_at, claimed_at), step_index
"""
JOB_TENANT_SQL = "SELECT tenant_id FROM job_executions WHERE lead_id = :lead LIMIT 1"


async def read_database(
    settings: CommonSettings, lead_id: uuid.UUID, tenant: uuid.UUID | None
) -> tuple[dict[str, Any] | None, uuid.UUID | None, list[dict[str, Any]]]:
    from sqlalchemy import text

    from services.common.db.engine import async_engine

    engine = async_engine(settings.sqlalchemy_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text(LEAD_SQL), {"lead": lead_id})).mappings().first()
            lead = dict(row) if row is not None else None
            if lead is not None:
                tenant = lead["tenant_id"]
            elif tenant is None:  # not projected (yet): the ledger may still know the lead
                tenant = (
                    await conn.execute(text(JOB_TENANT_SQL), {"lead": lead_id})
                ).scalar_one_or_none()
            jobs: list[dict[str, Any]] = []
            if tenant is not None:
                result = await conn.execute(text(JOBS_SQL), {"tenant": tenant, "lead": lead_id})
                jobs = [dict(r) for r in result.mappings()]
    finally:
        await engine.dispose()
    return lead, tenant, jobs


# kafka -----------------------------------------------------------------------------------------
@dataclass(slots=True)
class KafkaScan:
    events: list[dict[str, Any]] = field(default_factory=list)
    truncated: dict[str, int] = field(default_factory=dict)  # topic → records not read
    errors: list[str] = field(default_factory=list)


def _topics(topics: Topics) -> dict[str, str]:
    return {
        topics.order_events: "order",
        topics.touchpoint_commands: "command",
        topics.touchpoint_outcomes: "outcome",
        topics.contact_signals: "signal",
        topics.lead_changes: "state",
    }


def scan_kafka(
    settings: CommonSettings,
    *,
    lead_id: uuid.UUID,
    tenant_id: uuid.UUID,
    since: datetime,
    max_scan: int,
) -> KafkaScan:
    """Read the tenant's partition of every lead topic from `since`; keep this lead's records."""
    from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

    kinds = _topics(settings.topics)
    scan = KafkaScan()
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap_servers,
            "group.id": "leadctl-leads-show",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    needle = str(lead_id).encode()
    try:
        meta = consumer.list_topics(timeout=10).topics
        wanted = []
        for topic in kinds:
            if topic not in meta or not meta[topic].partitions:
                scan.errors.append(f"{topic}: missing")
                continue
            wanted.append(
                TopicPartition(topic, tenant_partition(tenant_id, len(meta[topic].partitions)))
            )
        since_ms = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, since_ms) for tp in wanted], timeout=10
        )
        assign, ends = [], {}
        for tp, start in zip(wanted, starts, strict=True):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            begin = high if start.offset in (OFFSET_END, -1) else max(start.offset, low)
            if high - begin > max_scan:
                scan.truncated[tp.topic] = high - max_scan - begin
                begin = high - max_scan
            if begin < high:
                assign.append(TopicPartition(tp.topic, tp.partition, begin))
                ends[tp.topic] = high
        if not assign:
            return scan
        consumer.assign(assign)
        open_topics = set(ends)
        idle = 0
        while open_topics and idle < 20:
            batch = consumer.consume(1000, timeout=0.5)
            idle = idle + 1 if not batch else 0
            for msg in batch:
                topic = str(msg.topic())
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        open_topics.discard(topic)
                    else:
                        scan.errors.append(f"{topic}: {err.str()}")
                    continue
                offset = int(msg.offset() or 0)
                if offset >= ends.get(topic, 0) - 1:
                    open_topics.discard(topic)
                value = msg.value() or b""
                if needle not in value:
                    continue
                try:
                    body = json.loads(value)
                except ValueError:
                    continue
                if not isinstance(body, dict) or body.get("lead_id") != str(lead_id):
                    continue
                ts = msg.timestamp()[1]
                scan.events.append(
                    {
                        "kind": kinds[topic],
                        "topic": topic,
                        "offset": offset,
                        "kafka_time": datetime.fromtimestamp(ts / 1000, UTC) if ts > 0 else None,
                        "body": body,
                    }
                )
    except KafkaException as exc:
        scan.errors.append(str(exc))
    finally:
        consumer.close()
    return scan


# rendering -------------------------------------------------------------------------------------
_TIME_FIELD = {
    "order": "occurred_at",
    "command": "issued_at",
    "outcome": "decided_at",
    "signal": "occurred_at",
    "state": "changed_at",
}


def _when(event: dict[str, Any]) -> datetime:
    raw = event["body"].get(_TIME_FIELD[event["kind"]])
    if isinstance(raw, str):
        try:
            at = datetime.fromisoformat(raw.replace("Z", "+00:00"))
            return at if at.tzinfo else at.replace(tzinfo=UTC)
        except ValueError:
            pass
    kafka_time = event.get("kafka_time")
    return kafka_time if isinstance(kafka_time, datetime) else datetime.fromtimestamp(0, UTC)


def describe(event: dict[str, Any], mask: Masker) -> str:
    """One line a person reads: what this record says about the lead."""
    b, kind = event["body"], event["kind"]
    if kind == "order":
        order = b.get("order") or {}
        flags = [
            f for f in ("authorized", "invoiced", "paid", "archived", "deleted") if order.get(f)
        ]
        parts = [f"{b.get('source')} {b.get('entity')} {b.get('operation')}"]
        if order:
            number = order.get("number") or order.get("order_id")
            parts.append(f"order #{number} {order.get('status', '')}".rstrip())
        if flags:
            parts.append(",".join(flags))
        customer = b.get("customer") or {}
        if customer.get("email") or customer.get("phone"):
            contacts = [mask.email(customer.get("email")), mask.phone(customer.get("phone"))]
            parts.append(" ".join(c for c in contacts if c))
        return " · ".join(parts)
    if kind == "command":
        extra = " (record only)" if b.get("record_only") else ""
        return (
            f"step {b.get('step_index')} {b.get('channel')} '{b.get('template')}' "
            f"due {str(b.get('due_at', ''))[:19]}{extra}"
        )
    if kind == "outcome":
        text = f"step {b.get('step_index')} {b.get('channel')} {b.get('status')}: {b.get('reason')}"
        if b.get("provider_message_id"):
            text += f" · id {b['provider_message_id']}"
        if b.get("deferred_until"):
            text += f" · until {str(b['deferred_until'])[:19]}"
        return text + (" · duplicate" if b.get("duplicate") else "")
    if kind == "signal":
        parts = [str(b.get("kind")), b.get("channel") or "", f"via {b.get('source')}"]
        if b.get("contact"):
            parts.append(mask.contact(b["contact"]) or "")
        if b.get("detail"):
            parts.append(str(b["detail"])[:60])
        return " ".join(p for p in parts if p)
    return f"{b.get('from_state') or '∅'} → {b.get('to_state')} ({b.get('reason')})"


def lead_json(lead: dict[str, Any], mask: Masker) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in lead.items()}
    out["email"], out["phone"] = mask.email(lead.get("email")), mask.phone(lead.get("phone"))
    for key in ("lead_id", "tenant_id"):
        out[key] = str(lead[key])
    return out


def job_json(job: dict[str, Any], mask: Masker) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in job.items()}
    out["command_id"] = str(job["command_id"])
    out["recipient"] = mask.contact(job.get("recipient"))
    return out


def masked_body(body: dict[str, Any], mask: Masker) -> dict[str, Any]:
    """The record with every contact field masked (for --json)."""
    out: dict[str, Any] = json.loads(json.dumps(body))
    for holder in (out.get("customer"), out.get("recipient"), out.get("lead", {}).get("customer")):
        if isinstance(holder, dict):
            holder["email"] = mask.email(holder.get("email"))
            holder["phone"] = mask.phone(holder.get("phone"))
    if "contact" in out:
        out["contact"] = mask.contact(out.get("contact"))
    return out


def print_lead(lead: dict[str, Any] | None, lead_id: uuid.UUID, mask: Masker) -> None:
    section(f"Lead {lead_id}")
    if lead is None:
        click.echo("  not in the read model (not projected yet, or unknown)")
        return
    name = " ".join(p for p in (lead.get("first_name"), lead.get("last_name")) if p) or "-"
    rows = [
        ("location", f"{lead.get('tenant_name') or '-'} ({lead['tenant_id']})"),
        ("state", lead["state"] + (f" ({lead['lost_reason']})" if lead.get("lost_reason") else "")),
        ("customer", name),
        ("email", mask.email(lead.get("email")) or "-"),
        ("phone", mask.phone(lead.get("phone")) or "-"),
        ("source", f"{lead['source']}  order {lead.get('order_number') or '-'}"),
        ("vehicle", lead.get("vehicle") or "-"),
        ("services", ", ".join(lead.get("services") or []) or "-"),
        ("touches sent", f"{lead['touches_sent']}  last {_t(lead.get('last_touch_at'))}"),
        (
            "opted out",
            ", ".join(
                c for c, f in (("email", "email_opted_out"), ("sms", "sms_opted_out")) if lead[f]
            )
            or "no",
        ),
        ("sequence", "stopped" if lead.get("sequence_stopped") else "running"),
        ("created", f"{_t(lead['created_at'])}   updated {_t(lead['updated_at'])}"),
    ]
    for key, value in rows:
        click.echo(f"  {key:<13} {value}")


def _delivery(job: dict[str, Any]) -> str:
    status = job.get("delivery_status")
    if not status:
        return "-"
    error = job.get("delivery_error")
    return f"{status} ({error})"[:60] if error else str(status)


def _t(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "-" if value is None else str(value)[:19].replace("T", " ")


@click.group("leads")
def leads() -> None:
    """Inspect leads: read model, touch points and their events in Kafka."""


@leads.command("show")
@click.argument("lead_id", type=click.UUID)
@click.option("--since", default="30d", show_default=True, help="Read Kafka from (7d, 12h, ISO).")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest timeline rows.")
@click.option(
    "--tenant", type=click.UUID, default=None, help="Tenant, if the lead is not projected."
)
@click.option(
    "--max-scan",
    type=int,
    default=DEFAULT_MAX_SCAN,
    show_default=True,
    help="Records read per topic at most.",
)
@click.option("--no-kafka", is_flag=True, help="Only the database.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(
    lead_id: uuid.UUID,
    since: str,
    limit: int,
    tenant: uuid.UUID | None,
    max_scan: int,
    no_kafka: bool,
    as_json: bool,
) -> None:
    """A lead's timeline: state, touch points with decisions and delivery, and its events."""
    settings = load_settings(CommonSettings)
    start = parse_since(since, datetime.now(UTC))

    async def go() -> tuple[dict[str, Any] | None, uuid.UUID | None, list[dict[str, Any]]]:
        return await read_database(settings, lead_id, tenant)

    lead, tenant_id, jobs = run_async(go)
    if lead is None and tenant_id is None:
        raise click.ClickException(
            f"lead {lead_id} is neither in the read model nor in the send ledger; "
            "pass --tenant to search Kafka anyway"
        )
    assert tenant_id is not None
    scan = KafkaScan()
    if not no_kafka:
        scan = scan_kafka(
            settings, lead_id=lead_id, tenant_id=tenant_id, since=start, max_scan=max_scan
        )
    scan.events.sort(key=lambda e: (_when(e), e["topic"], e["offset"]))
    timeline = scan.events[-limit:] if limit > 0 else scan.events
    email = normalize_email((lead or {}).get("email"))
    mask = Masker(settings.whitelist, lead_whitelisted=is_whitelisted(email, settings.whitelist))

    if as_json:
        report = {
            "lead_id": str(lead_id),
            "tenant_id": str(tenant_id),
            "lead": lead_json(lead, mask) if lead else None,
            "touchpoints": [job_json(j, mask) for j in jobs],
            "timeline": [
                {
                    "at": _when(e).isoformat(),
                    "kind": e["kind"],
                    "topic": e["topic"],
                    "offset": e["offset"],
                    "summary": describe(e, mask),
                    "record": masked_body(e["body"], mask),
                }
                for e in timeline
            ],
            "kafka": {
                "since": start.isoformat(),
                "truncated": scan.truncated,
                "errors": scan.errors,
                "omitted": len(scan.events) - len(timeline),
            },
        }
        click.echo(json.dumps(report, indent=2, default=str))
        return

    print_lead(lead, lead_id, mask)
    section(f"Touch points ({len(jobs)})")
    if jobs:
        click.echo(
            format_table(
                ["STEP", "CHANNEL", "STATUS", "REASON", "DECIDED", "PROVIDER ID", "DELIVERY", "TO"],
                [
                    [
                        j["step_index"],
                        j["channel"],
                        j["status"] + (" (record only)" if j["record_only"] else ""),
                        (j["reason"] or "-")[:48],
                        _t(j["decided_at"] or j["claimed_at"]),
                        j["provider_message_id"] or "-",
                        _delivery(j),
                        mask.contact(j["recipient"]) or "-",
                    ]
                    for j in jobs
                ],
            )
        )
    else:
        click.echo("  none")
    if no_kafka:
        return
    section(f"Timeline from Kafka since {_t(start)} ({len(scan.events)} records)")
    if scan.events and len(timeline) < len(scan.events):
        click.echo(f"  (showing the newest {len(timeline)}; raise --limit for more)")
    for topic, skipped in scan.truncated.items():
        click.echo(f"  ({topic}: {skipped} older records not read; raise --max-scan)")
    for err in scan.errors:
        click.echo(f"  ! {err}")
    if not timeline:
        click.echo("  no records for this lead")
    else:
        click.echo(
            format_table(
                ["AT", "WHAT", "DETAIL"],
                [[_t(_when(e)), e["kind"], describe(e, mask)] for e in timeline],
            )
        )
