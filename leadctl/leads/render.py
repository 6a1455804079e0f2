"""What `leads show` prints: the lead's row, its touch points and its timeline, as text or as
JSON. Customer contacts are masked unless the lead's email is on LEAD_EMAIL_WHITELIST."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click

from leadctl.leads.kafka import KafkaScan
from leadctl.tables import format_table, section, short_time
from services.common.masking import mask_email, mask_phone
from services.common.whitelist import is_whitelisted


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


_TIME_FIELD = {
    "order": "occurred_at",
    "command": "issued_at",
    "outcome": "decided_at",
    "signal": "occurred_at",
    "state": "changed_at",
}


def when(event: dict[str, Any]) -> datetime:
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
    if isinstance(consent := job.get("consent"), dict):
        out["consent"] = {**consent, "contact": mask.contact(consent.get("contact"))}
    return out


def _yes_no(value: Any) -> str:
    return {True: "yes", False: "no"}.get(value, "?")


def consent_summary(consent: dict[str, Any] | None) -> str:
    """The source consent a decision was made on, in one short line (`?`: not recorded)."""
    if not consent:
        return "none recorded"
    flag = "optIn" if consent.get("channel") == "sms" else "subscribed"
    parts = [
        str(consent.get("source")),
        f"{flag}={_yes_no(consent.get('opted_in'))}",
        f"marketing={_yes_no(consent.get('marketing_opt_in'))}",
    ]
    if consent.get("preferred"):
        parts.append(f"prefers={consent['preferred']}")
    if consent.get("line_type"):
        parts.append(str(consent["line_type"]))
    if consent.get("text_version"):
        parts.append(f"text {consent['text_version']}")
    return " ".join(parts)


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
        ("touches sent", f"{lead['touches_sent']}  last {short_time(lead.get('last_touch_at'))}"),
        (
            "opted out",
            ", ".join(
                c for c, f in (("email", "email_opted_out"), ("sms", "sms_opted_out")) if lead[f]
            )
            or "no",
        ),
        ("sequence", "stopped" if lead.get("sequence_stopped") else "running"),
        ("created", f"{short_time(lead['created_at'])}   updated {short_time(lead['updated_at'])}"),
    ]
    for key, value in rows:
        click.echo(f"  {key:<13} {value}")


def _delivery(job: dict[str, Any]) -> str:
    status = job.get("delivery_status")
    if not status:
        return "-"
    error = job.get("delivery_error")
    return f"{status} ({error})"[:60] if error else str(status)


def json_report(
    *,
    lead_id: uuid.UUID,
    tenant_id: uuid.UUID,
    lead: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    scan: KafkaScan,
    timeline: list[dict[str, Any]],
    since: datetime,
    mask: Masker,
) -> dict[str, Any]:
    """`leads show --json`: every contact masked as on screen."""
    return {
        "lead_id": str(lead_id),
        "tenant_id": str(tenant_id),
        "lead": lead_json(lead, mask) if lead else None,
        "touchpoints": [job_json(j, mask) for j in jobs],
        "timeline": [
            {
                "at": when(e).isoformat(),
                "kind": e["kind"],
                "topic": e["topic"],
                "offset": e["offset"],
                "summary": describe(e, mask),
                "record": masked_body(e["body"], mask),
            }
            for e in timeline
        ],
        "kafka": {
            "since": since.isoformat(),
            "truncated": scan.truncated,
            "errors": scan.errors,
            "omitted": len(scan.events) - len(timeline),
        },
    }


def print_report(
    *,
    lead_id: uuid.UUID,
    lead: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    scan: KafkaScan | None,
    timeline: list[dict[str, Any]],
    since: datetime,
    mask: Masker,
) -> None:
    """The lead, its touch points and (unless `scan` is None: --no-kafka) its timeline."""
    print_lead(lead, lead_id, mask)
    section(f"Touch points ({len(jobs)})")
    if jobs:
        click.echo(
            format_table(
                [
                    "STEP",
                    "CHANNEL",
                    "STATUS",
                    "REASON",
                    "DECIDED",
                    "PROVIDER ID",
                    "DELIVERY",
                    "TO",
                    "CONSENT",
                ],
                [
                    [
                        j["step_index"],
                        j["channel"],
                        j["status"] + (" (record only)" if j["record_only"] else ""),
                        (j["reason"] or "-")[:48],
                        short_time(j["decided_at"] or j["claimed_at"]),
                        j["provider_message_id"] or "-",
                        _delivery(j),
                        mask.contact(j["recipient"]) or "-",
                        consent_summary(j.get("consent")),
                    ]
                    for j in jobs
                ],
            )
        )
    else:
        click.echo("  none")
    if scan is None:
        return
    section(f"Timeline from Kafka since {short_time(since)} ({len(scan.events)} records)")
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
                [[short_time(when(e)), e["kind"], describe(e, mask)] for e in timeline],
            )
        )
