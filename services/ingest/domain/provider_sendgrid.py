"""SendGrid Event Webhook events → what they mean for a lead (pure; no I/O).

Every event of a batch becomes one `EmailEvent`: the signal it carries (if any), the suppression
it requires (bounce, spam report, unsubscribe, dropped for a recipient reason), and the delivery
status of the touch point. Correlation comes from the v3 `custom_args` that outbound sets
(`command_id`, `lead_id`, `tenant_id`), which SendGrid copies as top-level keys into each event.
Duplicates inside a batch collapse on `sg_event_id` (reference/messaging.md §2.1).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from schemas import bounds
from schemas.events import SignalKind
from services.common.masking import mask_contacts
from services.common.whitelist import normalize_email

PROVIDER = "sendgrid"

#: event → (signal kind or None, delivery status of the touch point or None)
_EVENTS: dict[str, tuple[SignalKind | None, str | None]] = {
    "processed": (None, "processed"),
    "deferred": (None, "deferred"),
    "delivered": (SignalKind.DELIVERED, "delivered"),
    "bounce": (SignalKind.BOUNCED, "bounced"),
    "dropped": (SignalKind.DROPPED, "dropped"),
    "spamreport": (SignalKind.SPAM_REPORT, None),
    "unsubscribe": (SignalKind.UNSUBSCRIBED, None),
    "group_unsubscribe": (SignalKind.UNSUBSCRIBED, None),
    "open": (SignalKind.OPENED, None),
    "click": (SignalKind.CLICKED, None),
}
#: events after which the address must never be mailed again (suppression reason)
_SUPPRESS = {
    "bounce": "bounce",
    "spamreport": "spamreport",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "group_unsubscribe",
}
#: `dropped` reasons that are about the recipient (not about our content)
_DROP_SUPPRESS = {
    "unsubscribed address": "unsubscribe",
    "bounced address": "bounce",
    "spam reporting address": "spamreport",
    "invalid": "invalid_address",
}


@dataclass(frozen=True, slots=True)
class EmailEvent:
    event_key: str
    event: str
    kind: SignalKind | None
    tenant_id: uuid.UUID | None
    lead_id: uuid.UUID | None
    command_id: uuid.UUID | None
    email: str | None
    occurred_at: datetime
    detail: str | None = None
    suppress: str | None = None
    delivery_status: str | None = None

    @property
    def signal_id(self) -> str:
        return f"{PROVIDER}:{self.event_key}"


class NotAnEventBatch(ValueError):
    """The body is not a JSON array of event objects."""


def _uuid(value: Any) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _when(value: Any, now: datetime) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return now
    return now


def _key(raw: dict[str, Any]) -> str:
    sg_event_id = raw.get("sg_event_id")
    if isinstance(sg_event_id, str) and 0 < len(sg_event_id) <= 200:
        return sg_event_id
    canonical = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _detail(name: str, raw: dict[str, Any]) -> str | None:
    parts = []
    for field in ("type", "reason", "status"):
        value = raw.get(field)
        if isinstance(value, str | int) and str(value).strip():
            parts.append(f"{field}={value}")
    if name == "click" and isinstance(raw.get("url"), str):
        parts.append(f"url={raw['url']}")
    text = mask_contacts("; ".join(parts))  # a bounce's reason quotes the address
    return text[: bounds.SIGNAL_DETAIL] or None


def map_event(raw: dict[str, Any], now: datetime) -> EmailEvent | None:
    """One SendGrid event; None for event types we do not use (e.g. group_resubscribe)."""
    name = raw.get("event")
    if not isinstance(name, str) or name not in _EVENTS:
        return None
    try:
        key = _key(raw)
    except (RecursionError, ValueError):  # nested too deep to name: no event of SendGrid's
        return None
    kind, delivery = _EVENTS[name]
    suppress = _SUPPRESS.get(name)
    if name == "dropped":
        reason = str(raw.get("reason") or "").strip().lower()
        suppress = next((v for k, v in _DROP_SUPPRESS.items() if reason.startswith(k)), None)
    if name == "bounce" and str(raw.get("type") or "").lower() == "blocked":
        # A block is about the sending IP/content, not the address: no suppression, and the
        # sequencer should not turn email off for it.
        kind, suppress, delivery = SignalKind.UNDELIVERED, None, "blocked"
    email = normalize_email(raw["email"]) if isinstance(raw.get("email"), str) else None
    if email is not None and (len(email) > bounds.EMAIL or "\x00" in email):
        email = None  # not an address anybody can have: nothing to suppress or report
    return EmailEvent(
        event_key=key,
        event=name,
        kind=kind,
        tenant_id=_uuid(raw.get("tenant_id")),
        lead_id=_uuid(raw.get("lead_id")),
        command_id=_uuid(raw.get("command_id")),
        email=email,
        occurred_at=_when(raw.get("timestamp"), now),
        detail=_detail(name, raw),
        suppress=suppress if email else None,
        delivery_status=delivery,
    )


def parse_batch(body: bytes, now: datetime) -> list[EmailEvent]:
    """The events of one webhook POST, duplicates (same sg_event_id) removed, order kept."""
    try:  # orjson: strict UTF-8, and nesting beyond 1024 levels is an error, not a recursion
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotAnEventBatch(f"not JSON: {exc}") from None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise NotAnEventBatch("expected a JSON array of event objects")
    seen: set[str] = set()
    out: list[EmailEvent] = []
    for raw in data:
        event = map_event(raw, now)
        if event is None or event.event_key in seen:
            continue
        seen.add(event.event_key)
        out.append(event)
    return out
