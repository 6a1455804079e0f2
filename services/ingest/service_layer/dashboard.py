"""The dashboard's use case: everything one page refresh shows, for one location or all the
locations the signed-in operator sees.

Figures come from the read model (funnel, touch points), from this process's webhook
instruments (rate and latency, kept as a history of snapshots) and from Kafka (consumer lag).

Scoped on the server: an `hq` operator sees every location; a `location` operator only its
own, and a location it may not see (or none that exists) is `UnknownTenant` (404), whoever
asks. The process-wide figures (webhooks, consumer lag) are shown to `hq` operators only.

Bounded: only the windows the page offers are accepted, a summary is cached a few seconds per
(locations, window), concurrent identical requests share one query (the cache's one in-flight
load), and the read model answers one query pair at a time, so many open pages cost the
database one query pair per refresh interval and nothing a caller varies can make it more.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.cache import TtlCache
from services.common.domain.location_health import judged
from services.common.domain.operators import Operator
from services.ingest.domain.dashboard import LagReport, Window, build_summary
from services.ingest.domain.webhook_stats import WebhookHistory
from services.ingest.errors import InvalidPayload, UnknownTenant
from services.ingest.ports import ConsumerLag, DashboardReads, WebhookMeter

#: The windows (minutes) the page offers; the API takes no other.
WINDOWS = (15, 60, 360, 1440, 10080)
HQ_ONLY = "shown to hq operators only"
#: The locations' names are re-read every NAMES_SECONDS, or NAMES_FRESH when one is missing.
NAMES_SECONDS, NAMES_FRESH = 30.0, 2.0
#: (the location asked for, the locations read, window, hq): what one summary depends on
SummaryKey = tuple[uuid.UUID | None, frozenset[uuid.UUID] | None, int, bool]


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
        poll_interval: timedelta = timedelta(seconds=30),
        default_key_tenant: uuid.UUID | None = None,
    ) -> None:
        """`poll_interval`, `default_key_tenant`: the poller's, to judge each location's
        health (`domain.location_health`)."""
        self.reads = reads
        self.poll_interval = poll_interval
        self.default_key_tenant = default_key_tenant
        self.lag = lag
        self.webhooks = webhooks
        self.history = WebhookHistory(keep_seconds=24 * 3600)
        self._cache: TtlCache[SummaryKey, dict[str, Any]] = TtlCache(
            ttl=cache_seconds, negative_ttl=0.0, max_known=256
        )
        self._db_lock = asyncio.Lock()

    def sample(self, *, min_interval: float = 0.0) -> None:
        """Snapshot the webhook instruments (skipped if the last one is younger than
        `min_interval` seconds, so a page refresh can ask for a fresh point cheaply)."""
        latest = self.history.latest
        if latest is not None and time.time() - latest.at < min_interval:
            return
        self.history.add(self.webhooks.snapshot())

    async def summary(
        self, viewer: Operator, tenant: uuid.UUID | None, minutes: int
    ) -> dict[str, Any]:
        """The page's JSON for `viewer`: `tenant` (one of the locations it sees) or all of
        them. Raises `InvalidPayload` for a window the page does not offer, `UnknownTenant`
        for a location the viewer may not see or that does not exist, `ReadModelUnavailable`
        when PostgreSQL does not answer."""
        if minutes not in WINDOWS:
            raise InvalidPayload(f"window must be one of {', '.join(map(str, WINDOWS))} (minutes)")
        if tenant is not None and (not viewer.sees(tenant) or not await self._exists(tenant)):
            raise UnknownTenant("unknown tenant")
        tenants = frozenset({tenant}) if tenant is not None else viewer.scope
        hq = viewer.is_hq
        key = (tenant, tenants, minutes, hq)
        payload = await self._cache.get(key, lambda: self._build(tenants, tenant, minutes, hq))
        assert payload is not None
        return payload

    async def _exists(self, tenant: uuid.UUID) -> bool:
        """Whether the location exists; a new one is found within NAMES_FRESH seconds (the
        names are read again at most that often however many unknown ids are asked for)."""
        if tenant in await self.reads.tenant_names(max_age=NAMES_SECONDS):
            return True
        return tenant in await self.reads.tenant_names(max_age=NAMES_FRESH)

    async def _build(
        self, tenants: frozenset[uuid.UUID] | None, tenant: uuid.UUID | None, minutes: int, hq: bool
    ) -> dict[str, Any]:
        window = Window.of(minutes, datetime.now(UTC))
        async with self._db_lock:  # one dashboard query pair at a time, whatever the viewers
            counts, lag = await asyncio.gather(
                self.reads.counts(
                    tenants=tenants, since=window.since, bucket_seconds=window.bucket_seconds
                ),
                self.lag.report() if hq else _no_lag(),
            )
        self.sample(min_interval=2.0)  # viewers see webhook figures as fresh as their refresh
        names = counts.names
        if tenants is not None:
            names = {t: n for t, n in names.items() if t in tenants}
        return build_summary(
            window=window,
            tenant=tenant,
            names=names,
            leads=counts.leads,
            touches=counts.touches,
            webhooks=self._webhooks(window) if hq else {"available": False, "note": HQ_ONLY},
            lag=lag.to_json(),
            health=judged(
                [f for f in counts.health if tenants is None or f.tenant_id in tenants],
                now=window.now,
                poll_interval=self.poll_interval,
                default_key_tenant=self.default_key_tenant,
            ),
        )

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


async def _no_lag() -> LagReport:
    return LagReport(error=HQ_ONLY)
