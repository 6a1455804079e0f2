"""Webhook rate and latency from snapshots of the ingest process's own instruments (pure).

The dashboard does not re-count requests: it snapshots the counter and histogram the ingest
handlers already update (`adapters.webhook_stats_prometheus`), and derives rates and quantiles
from the difference of two snapshots (what Prometheus' `rate()` and `histogram_quantile()` do,
for one process).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, field

Buckets = tuple[tuple[float, float], ...]  # (upper bound `le`, cumulative count), sorted


@dataclass(frozen=True, slots=True)
class WebhookStats:
    """One snapshot of the webhook request counter and latency histogram (all labels summed)."""

    at: float
    available: bool = False
    requests: float = 0.0
    by_label: dict[str, float] = field(default_factory=dict)
    latency_count: float = 0.0
    latency_sum: float = 0.0
    buckets: Buckets = ()


@dataclass(frozen=True, slots=True)
class WebhookWindow:
    """What happened between two snapshots: request rate and latency quantiles."""

    seconds: float
    requests: float
    rate_per_second: float
    p50_ms: float | None
    p95_ms: float | None
    mean_ms: float | None

    def to_json(self) -> dict[str, float | None]:
        return {
            "seconds": round(self.seconds, 1),
            "requests": self.requests,
            "rate_per_second": round(self.rate_per_second, 3),
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
            "mean_ms": _round(self.mean_ms),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def quantile(q: float, buckets: Buckets) -> float | None:
    """`histogram_quantile`: linear interpolation inside the bucket holding rank q·count."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return lower_bound  # the highest finite bound, as Prometheus does
            width = count - lower_count
            share = (rank - lower_count) / width if width > 0 else 1.0
            return lower_bound + (le - lower_bound) * share
        lower_bound, lower_count = le, count
    return lower_bound


def window(newer: WebhookStats, older: WebhookStats) -> WebhookWindow:
    """Rate and latency between two snapshots; a counter reset (restart) counts from zero."""
    seconds = max(newer.at - older.at, 1e-9)
    reset = newer.requests < older.requests or newer.latency_count < older.latency_count
    base = WebhookStats(at=older.at) if reset else older
    requests = newer.requests - base.requests
    count = newer.latency_count - base.latency_count
    old = dict(base.buckets)
    delta = tuple((le, c - old.get(le, 0.0)) for le, c in newer.buckets)
    seconds_sum = newer.latency_sum - base.latency_sum
    p50, p95 = quantile(0.5, delta), quantile(0.95, delta)
    return WebhookWindow(
        seconds=seconds,
        requests=requests,
        rate_per_second=requests / seconds,
        p50_ms=None if p50 is None else p50 * 1000,
        p95_ms=None if p95 is None else p95 * 1000,
        mean_ms=seconds_sum / count * 1000 if count > 0 else None,
    )


class WebhookHistory:
    """Snapshots for the charts' time axis: every one of the last `fine_seconds`, then one per
    `coarse_step` seconds up to `keep_seconds` (bounded memory however often pages refresh)."""

    def __init__(
        self,
        *,
        keep_seconds: float = 3600.0,
        fine_seconds: float = 3600.0,
        coarse_step: float = 60.0,
    ) -> None:
        self._keep = keep_seconds
        self._fine_keep = min(fine_seconds, keep_seconds)
        self._step = coarse_step
        self._fine: deque[WebhookStats] = deque()
        self._coarse: deque[WebhookStats] = deque()

    def add(self, stats: WebhookStats) -> None:
        self._fine.append(stats)
        if not self._coarse or stats.at - self._coarse[-1].at >= self._step:
            self._coarse.append(stats)
        while self._fine and stats.at - self._fine[0].at > self._fine_keep:
            self._fine.popleft()
        while self._coarse and stats.at - self._coarse[0].at > self._keep:
            self._coarse.popleft()

    def __len__(self) -> int:
        return len(self._fine) + len(self._coarse)

    @property
    def latest(self) -> WebhookStats | None:
        return self._fine[-1] if self._fine else None

    def _samples(self, seconds: float) -> list[WebhookStats]:
        """Snapshots of the last `seconds`, oldest first, newest always included."""
        if not self._fine:
            return []
        newest = self._fine[-1]
        fine_covers = newest.at - self._fine[0].at >= seconds
        reaches_further = bool(self._coarse) and self._coarse[0].at < self._fine[0].at
        source = self._fine if fine_covers or not reaches_further else self._coarse
        picked = [s for s in source if newest.at - s.at <= seconds]
        if not picked or picked[-1] is not newest:
            picked.append(newest)
        return picked

    def recent(self, seconds: float) -> WebhookWindow | None:
        """The window from the oldest snapshot at most `seconds` old to the newest one."""
        if len(self._fine) < 2:
            return None
        samples = self._samples(seconds)
        newest = self._fine[-1]
        older = samples[0] if len(samples) >= 2 else self._fine[-2]
        return window(newest, older)

    def series(self, seconds: float, *, points: int = 60) -> list[dict[str, float | None]]:
        """Rate and p95 per step over the last `seconds`, at most `points` steps."""
        samples = self._samples(seconds)
        step = max(1, math.ceil((len(samples) - 1) / points))
        picked = samples[::step]
        if samples and picked[-1] is not samples[-1]:
            picked.append(samples[-1])
        out: list[dict[str, float | None]] = []
        for older, newer in itertools.pairwise(picked):
            w = window(newer, older)
            rate = round(w.rate_per_second, 3)
            out.append({"t": round(newer.at, 3), "rate": rate, "p95_ms": _round(w.p95_ms)})
        return out
