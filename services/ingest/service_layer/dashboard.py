"""The dashboard's use case: everything one page refresh shows, for one location or all.

Figures come from the read model (funnel, touch points), from this process's webhook
instruments (rate and latency, kept as a history of snapshots) and from Kafka (consumer lag).
A summary is cached a few seconds per (location, window), and the read model answers one query
pair at a time, so many open pages cost the database one query pair per refresh interval.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from services.ingest.domain.dashboard import Window, build_summary
from services.ingest.domain.webhook_stats import WebhookHistory
from services.ingest.ports import ConsumerLag, DashboardReads, WebhookMeter


class Dashboard:
    """The summaries, their cache and the webhook history; `sample` is called every few
    seconds by the entrypoint's sampler and before each summary."""

    def __init__(
        self,
        *,
        reads: DashboardReads,
        lag: ConsumerLag,
        webhooks: WebhookMeter,
        cache_seconds: float = 2.0,
    ) -> None:
        self.reads = reads
        self.lag = lag
        self.webhooks = webhooks
        self.history = WebhookHistory(keep_seconds=24 * 3600)
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, int], tuple[float, dict[str, Any]]] = {}
        self._db_lock = asyncio.Lock()

    def sample(self, *, min_interval: float = 0.0) -> None:
        """Snapshot the webhook instruments (skipped if the last one is younger than
        `min_interval` seconds, so a page refresh can ask for a fresh point cheaply)."""
        latest = self.history.latest
        if latest is not None and time.time() - latest.at < min_interval:
            return
        self.history.add(self.webhooks.snapshot())

    async def summary(self, tenant: uuid.UUID | None, minutes: int) -> dict[str, Any]:
        """The page's JSON; raises `ReadModelUnavailable` when PostgreSQL does not answer."""
        window = Window.of(minutes, datetime.now(UTC))
        key = (str(tenant), window.minutes)
        hit = self._cache.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._cache_seconds:
            return hit[1]
        async with self._db_lock:  # one dashboard query pair at a time, whatever the viewers
            hit = self._cache.get(key)
            if hit is not None and time.monotonic() - hit[0] < self._cache_seconds:
                return hit[1]
            counts, lag = await asyncio.gather(
                self.reads.counts(
                    tenant=tenant, since=window.since, bucket_seconds=window.bucket_seconds
                ),
                self.lag.report(),
            )
        self.sample(min_interval=2.0)  # viewers see webhook figures as fresh as their refresh
        payload = build_summary(
            window=window,
            tenant=tenant,
            names=counts.names,
            leads=counts.leads,
            touches=counts.touches,
            webhooks=self._webhooks(window),
            lag=lag.to_json(),
        )
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), payload)
        return payload

    def _webhooks(self, window: Window) -> dict[str, Any]:
        latest = self.history.latest
        last_minute = self.history.recent(60)
        in_window = self.history.recent(window.minutes * 60)
        return {
            "available": bool(latest and latest.available),
            "metric": self.webhooks.request_metric,
            "requests_total": latest.requests if latest else 0,
            "by_label": latest.by_label if latest else {},
            "last_minute": last_minute.to_json() if last_minute else None,
            "window": in_window.to_json() if in_window else None,
            "series": self.history.series(window.minutes * 60),
        }
