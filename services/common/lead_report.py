"""One lead's report as JSON (what `leadctl leads show --json` prints and the dashboard's lead
page shows): its row, its touch points and its timeline from Kafka, each record summarised.
Customer contacts are masked unless the lead's email is on LEAD_EMAIL_WHITELIST."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.kafka.lead_scan import KafkaScan
from services.common.masking import mask_email, mask_phone
from services.common.whitelist import is_whitelisted, normalize_email


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


def masker_for(whitelist: frozenset[str], email: str | None) -> Masker:
    """The masking of a lead whose email is `email`: its contacts in full only when that
    email is whitelisted (a test lead)."""
    lead_whitelisted = is_whitelisted(normalize_email(email), whitelist)
    return Masker(whitelist, lead_whitelisted=lead_whitelisted)


def newest_in_order(scan: KafkaScan, limit: int) -> list[dict[str, Any]]:
    """The scan's events in time order (sorted in place), the newest `limit` (0: all)."""
    scan.events.sort(key=lambda e: (when(e), e["topic"], e["offset"]))
    return scan.events[-limit:] if limit > 0 else scan.events


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
