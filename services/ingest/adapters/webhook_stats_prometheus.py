"""Snapshots of ingest's webhook instruments, read from the process's own Prometheus registry
(the counter and histogram the handlers already update; `domain.webhook_stats` derives rates
and quantiles from them)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric

from services.ingest.domain.webhook_stats import WebhookStats


def _family(registry: CollectorRegistry, name: str) -> Metric | None:
    base = name.removesuffix("_total")
    for metric in registry.collect():
        if metric.name in (name, base):
            return metric
    return None


@dataclass(frozen=True, slots=True)
class RegistryWebhookMeter:
    """Snapshots `request_metric` (a Counter) and `latency_metric` (a Histogram, seconds).

    `breakdown_label` names the counter label to break requests down by (e.g. `outcome`);
    by default the counter's first label is used. Missing metrics give `available=False`.
    """

    registry: CollectorRegistry
    request_metric: str
    latency_metric: str
    breakdown_label: str | None = None

    def snapshot(self, at: float | None = None) -> WebhookStats:
        now = time.time() if at is None else at
        counter = _family(self.registry, self.request_metric)
        histogram = _family(self.registry, self.latency_metric)
        if counter is None and histogram is None:
            return WebhookStats(at=now)
        requests = 0.0
        by_label: dict[str, float] = {}
        for sample in counter.samples if counter is not None else ():
            if not sample.name.endswith("_total"):
                continue  # `_created` timestamps
            requests += sample.value
            label = self.breakdown_label or next(iter(sample.labels), None)
            if label is not None:
                key = sample.labels.get(label, "")
                by_label[key] = by_label.get(key, 0.0) + sample.value
        count = total = 0.0
        cumulative: dict[float, float] = {}
        for sample in histogram.samples if histogram is not None else ():
            if sample.name.endswith("_bucket"):
                le = float(sample.labels["le"])
                cumulative[le] = cumulative.get(le, 0.0) + sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
        return WebhookStats(
            at=now,
            available=True,
            requests=requests,
            by_label=by_label,
            latency_count=count,
            latency_sum=total,
            buckets=tuple(sorted(cumulative.items())),
        )
