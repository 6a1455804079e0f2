"""The dashboard's figures and the JSON one refresh shows (pure: no I/O, unit-tested directly).

The counts come from the read model (`adapters.dashboard_pg`), the lag rows from Kafka
(`adapters.lag_probe`); `build_summary` shapes them, with the webhook figures, into the page's
JSON.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from services.common.domain.location_health import LocationFacts
from services.common.domain.read_model import JOB_STATUSES, LEAD_STATES

if TYPE_CHECKING:
    from services.common.kafka.lag import PartitionLag

#: Bucket widths (seconds) the time axis snaps to; the smallest giving at most MAX_BUCKETS.
BUCKET_CHOICES = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600)
MAX_BUCKETS = 60
MIN_WINDOW_MINUTES, MAX_WINDOW_MINUTES = 5, 7 * 24 * 60
DECISIONS = tuple(s for s in JOB_STATUSES if s != "claimed")


@dataclass(frozen=True, slots=True)
class Window:
    """The time range of one summary and its bucket grid (epoch seconds)."""

    minutes: int
    bucket_seconds: int
    now: datetime

    @classmethod
    def of(cls, minutes: int, now: datetime) -> Window:
        minutes = max(MIN_WINDOW_MINUTES, min(MAX_WINDOW_MINUTES, minutes))
        seconds = minutes * 60
        bucket = next((b for b in BUCKET_CHOICES if seconds / b <= MAX_BUCKETS), BUCKET_CHOICES[-1])
        return cls(minutes=minutes, bucket_seconds=bucket, now=now)

    @property
    def since(self) -> datetime:
        return self.now - timedelta(minutes=self.minutes)

    def buckets(self) -> list[int]:
        first = int(self.since.timestamp()) // self.bucket_seconds
        last = int(self.now.timestamp()) // self.bucket_seconds
        return list(range(first, last + 1))


@dataclass(slots=True)
class DeclinedWork:
    """Declined work of a location's leads (every lead, like the funnel): the declined or
    deferred services the declined-work campaign follows up, and those a later order of the
    customer brought back (revived), each a count and a value in cents."""

    services: int = 0
    cents: int = 0
    revived_services: int = 0
    revived_cents: int = 0

    def __add__(self, other: DeclinedWork) -> DeclinedWork:
        return DeclinedWork(
            self.services + other.services,
            self.cents + other.cents,
            self.revived_services + other.revived_services,
            self.revived_cents + other.revived_cents,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "followed_up": {"services": self.services, "cents": self.cents},
            "brought_back": {"services": self.revived_services, "cents": self.revived_cents},
            "value_ratio": _ratio(self.revived_cents, self.cents),
        }


@dataclass(slots=True)
class LeadCounts:
    """Leads by location and state, leads created per time bucket, and each location's
    declined work."""

    by_tenant: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    created_per_bucket: dict[int, int] = field(default_factory=dict)
    declined_by_tenant: dict[uuid.UUID, DeclinedWork] = field(default_factory=dict)


@dataclass(slots=True)
class TouchCounts:
    """Touch-point decisions in the window, by location, time bucket, reason and channel."""

    by_tenant: dict[uuid.UUID, dict[str, int]] = field(default_factory=dict)
    whitelist_by_tenant: dict[uuid.UUID, int] = field(default_factory=dict)
    #: (bucket, status, reason code) → count
    by_bucket: dict[tuple[int, str, str], int] = field(default_factory=dict)
    #: (channel, status, delivery status or "-") → count
    by_channel: dict[tuple[str, str, str], int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReadModelCounts:
    """What one refresh reads from PostgreSQL: the locations' names and the two counts."""

    names: dict[uuid.UUID, str]
    leads: LeadCounts
    touches: TouchCounts
    #: what the read model knows of each location asked for (`domain.location_health`)
    health: list[LocationFacts] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LagReport:
    """A consumer-lag reading (rows per group and partition), or the error that prevented it."""

    rows: list[PartitionLag] = field(default_factory=list)
    error: str | None = None
    as_of: float = 0.0

    def to_json(self) -> dict[str, Any]:
        groups: dict[str, dict[str, Any]] = {}
        for row in self.rows:
            g = groups.setdefault(
                row.group, {"group": row.group, "lag": 0, "partitions": 0, "behind": 0, "max": 0}
            )
            g["lag"] += row.lag
            g["partitions"] += 1
            g["behind"] += 1 if row.lag else 0
            g["max"] = max(g["max"], row.lag)
            topics = g.setdefault("topics", {})
            topics[row.topic] = topics.get(row.topic, 0) + row.lag
        return {
            "groups": sorted(groups.values(), key=lambda g: g["group"]),
            "total": sum(r.lag for r in self.rows),
            "error": self.error,
            "as_of": round(self.as_of, 3),
        }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _funnel(states: dict[str, int]) -> dict[str, int]:
    return {s: states.get(s, 0) for s in LEAD_STATES}


def _decisions(statuses: dict[str, int]) -> int:
    return sum(statuses.get(s, 0) for s in DECISIONS)


def build_summary(
    *,
    window: Window,
    tenant: uuid.UUID | None,
    names: dict[uuid.UUID, str],
    leads: LeadCounts,
    touches: TouchCounts,
    webhooks: dict[str, Any],
    lag: dict[str, Any],
    health: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything one page refresh shows, for one location (`tenant`) or all of them
    (`health`: each location with what keeps it from sending)."""
    grid = window.buckets()
    index = {b: i for i, b in enumerate(grid)}

    funnel = _funnel({})
    for states in leads.by_tenant.values():
        for state, n in states.items():
            funnel[state] = funnel.get(state, 0) + n
    created = [leads.created_per_bucket.get(b, 0) for b in grid]

    totals = {s: 0 for s in JOB_STATUSES}
    for statuses in touches.by_tenant.values():
        for status, n in statuses.items():
            totals[status] = totals.get(status, 0) + n
    whitelist_skips = sum(touches.whitelist_by_tenant.values())
    declined = sum(leads.declined_by_tenant.values(), DeclinedWork())

    by_status: dict[str, list[int]] = {s: [0] * len(grid) for s in JOB_STATUSES}
    reasons: dict[tuple[str, str], list[int]] = {}
    for (bucket, status, reason), n in touches.by_bucket.items():
        i = index.get(bucket)
        if i is None:
            continue
        by_status.setdefault(status, [0] * len(grid))[i] += n
        reasons.setdefault((status, reason), [0] * len(grid))[i] += n
    ranked = sorted(reasons.items(), key=lambda item: (-sum(item[1]), item[0]))
    reason_rows = [
        {"status": s, "reason": r, "count": sum(series), "series": series}
        for (s, r), series in ranked
    ]

    ids = [tenant] if tenant is not None else list(names)
    ids += [t for t in leads.by_tenant if t not in ids and tenant is None]
    leads_of = {t: sum(leads.by_tenant.get(t, {}).values()) for t in ids}
    ids.sort(key=lambda t: (-leads_of[t], names.get(t, str(t)).lower()))
    locations = []
    for tid in ids:
        states = leads.by_tenant.get(tid, {})
        statuses = touches.by_tenant.get(tid, {})
        wl = touches.whitelist_by_tenant.get(tid, 0)
        locations.append(
            {
                "tenant_id": str(tid),
                "name": names.get(tid, str(tid)),
                "leads": leads_of[tid],
                "funnel": _funnel(states),
                "touchpoints": {s: statuses.get(s, 0) for s in JOB_STATUSES},
                "whitelist_skips": wl,
                "skip_rate": _ratio(wl, _decisions(statuses)),
                "declined": leads.declined_by_tenant.get(tid, DeclinedWork()).to_json(),
            }
        )

    return {
        "generated_at": window.now.isoformat(),
        "tenant": str(tenant) if tenant is not None else "all",
        "window_minutes": window.minutes,
        "bucket_seconds": window.bucket_seconds,
        "buckets": [b * window.bucket_seconds for b in grid],
        "tenants": [{"id": str(t), "name": n} for t, n in sorted(names.items(), key=_by_name)],
        "funnel": funnel,
        "leads_total": sum(funnel.values()),
        "ingestion": {
            "in_window": sum(created),
            "per_hour": round(sum(created) / (window.minutes / 60), 2),
            "series": created,
        },
        "touchpoints": {
            "totals": totals,
            "series": by_status,
            "reasons": reason_rows,
        },
        "skip_rate": {
            "whitelist_skips": whitelist_skips,
            "decisions": _decisions(totals),
            "ratio": _ratio(whitelist_skips, _decisions(totals)),
        },
        "delivery": [
            {"channel": c, "status": s, "delivery_status": d, "count": n}
            for (c, s, d), n in sorted(touches.by_channel.items())
            if s == "sent"
        ],
        "declined": declined.to_json(),
        "locations": locations,
        "health": health or [],
        "webhooks": webhooks,
        "lag": lag,
    }


def _by_name(item: tuple[uuid.UUID, str]) -> tuple[str, str]:
    return (item[1].lower(), str(item[0]))
