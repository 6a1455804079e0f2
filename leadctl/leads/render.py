"""What `leads show` prints: the lead's row, its touch points and its timeline, as text (the
JSON and the masking: `services.common.lead_report`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import click

from leadctl.tables import format_table, section, short_time
from services.common.kafka.lead_scan import KafkaScan
from services.common.lead_report import Masker, consent_summary, describe, when


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
