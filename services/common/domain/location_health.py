"""What keeps a location from sending (or from hearing about its orders), as plain facts
turned into problems an operator can act on. Shown on the dashboard, by `leadctl status` and at
`leadctl tenants add`; the facts come from PostgreSQL (`services.common.db.location_health`).

- no postal address: every email is skipped `no_postal_address` (CAN-SPAM footer);
- no opening hours: emails go out in the default 8:00–20:00, not when the shop is open;
- no Shopmonkey API key for its company: the poller cannot read its orders, so a missed
  webhook is never recovered;
- webhooks failing: its recent orders all came from the poller, none by webhook;
- poller cursor old: the poller has not read its company for a while (or never succeeded);
- provider not configured: outbound skipped its touch points `email_disabled`/`sms_disabled`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

#: Orders by poller only (none by webhook) in the window before webhooks count as failing.
POLL_ONLY_ORDERS = 3
#: The poller is late after this many intervals without a successful read (at least STALE_MIN).
STALE_INTERVALS = 3
STALE_MIN = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class LocationFacts:
    """What the read model knows about one location (counts: over the last 24 h)."""

    tenant_id: uuid.UUID
    name: str
    active: bool
    postal_address: str | None
    hours_days: int
    company_id: str
    company_has_api_key: bool
    poll_last_success_at: datetime | None
    poll_last_error: str | None
    webhook_orders: int
    poll_orders: int
    email_disabled: int
    sms_disabled: int


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    text: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "text": self.text}


def location_problems(
    facts: LocationFacts,
    *,
    now: datetime,
    poll_interval: timedelta,
    api_key_by_default: bool = False,
) -> list[Problem]:
    """Each thing that keeps `facts`' location from sending, with what to do about it
    (`api_key_by_default`: SHOPMONKEY_API_KEY serves this location's company)."""
    out: list[Problem] = []
    if not facts.active:
        out.append(Problem("inactive", "inactive: nothing is sent for it"))
    if not (facts.postal_address or "").strip():
        out.append(
            Problem(
                "no_postal_address",
                "no postal address: every email is skipped (CAN-SPAM); set its address",
            )
        )
    if facts.hours_days == 0:
        out.append(
            Problem(
                "no_hours",
                "no opening hours: emails go out 8:00-20:00 local, not when the shop is open",
            )
        )
    has_key = facts.company_has_api_key or api_key_by_default
    if not has_key:
        out.append(
            Problem(
                "no_shopmonkey_key",
                f"no Shopmonkey API key for company {facts.company_id}: the poller cannot read "
                "its orders, a missed webhook is never recovered",
            )
        )
    if facts.webhook_orders == 0 and facts.poll_orders >= POLL_ONLY_ORDERS:
        out.append(
            Problem(
                "webhooks_failing",
                f"webhooks failing: its last {facts.poll_orders} orders (24 h) came from the "
                "poller, none by webhook; check the company's webhook URL and secret",
            )
        )
    if has_key:
        stale_after = max(poll_interval * STALE_INTERVALS, STALE_MIN)
        last = facts.poll_last_success_at
        if last is None or now - last > stale_after:
            since = "never read" if last is None else f"last read {_ago(now - last)} ago"
            error = f" (last error: {facts.poll_last_error[:120]})" if facts.poll_last_error else ""
            out.append(Problem("poller_cursor_old", f"poller cursor old: {since}{error}"))
    for channel, skipped in (("email", facts.email_disabled), ("SMS", facts.sms_disabled)):
        if skipped:
            out.append(
                Problem(
                    f"{channel.lower()}_provider_not_configured",
                    f"{channel} provider not configured: {skipped} touch points skipped (24 h); "
                    "set its credentials at outbound",
                )
            )
    return out


def _ago(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} d"


def judged(
    facts: list[LocationFacts],
    *,
    now: datetime,
    poll_interval: timedelta,
    default_key_tenant: uuid.UUID | None = None,
) -> list[dict[str, object]]:
    """Every location with its problems, JSON-ready (`default_key_tenant`: the TENANT_ID
    location whose company SHOPMONKEY_API_KEY serves, when that key is set)."""
    default_company = next((f.company_id for f in facts if f.tenant_id == default_key_tenant), None)
    return [
        {
            "tenant_id": str(f.tenant_id),
            "name": f.name,
            "problems": [
                p.to_json()
                for p in location_problems(
                    f,
                    now=now,
                    poll_interval=poll_interval,
                    api_key_by_default=f.company_id == default_company,
                )
            ],
        }
        for f in facts
    ]
