"""Prometheus instruments of ingest and the poller (seed "Monitoring": webhook processing rate),
registered once per process on the default registry."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

WEBHOOK_REQUESTS = Counter(
    "ingest_webhook_requests_total",
    "Shopmonkey webhook requests by outcome (accepted, duplicate, ignored, unrouted, "
    "demo_dropped, unauthorized, unknown_tenant, unknown_company, bad_request, too_large, "
    "unsupported_media_type, unavailable).",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "ingest_webhook_processing_seconds",
    "Time from request received to answer (incl. Kafka acknowledgement), by outcome class.",
    ["result"],
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3, 5),
)
#: The webhook instruments' names as the dashboard reads them back (`RegistryWebhookMeter`).
WEBHOOK_REQUEST_METRIC = "ingest_webhook_requests_total"
WEBHOOK_LATENCY_METRIC = "ingest_webhook_processing_seconds"
WEBSITE_REQUESTS = Counter(
    "ingest_website_lead_requests_total", "Website lead form requests by outcome.", ["outcome"]
)
SIGNAL_REQUESTS = Counter(
    "ingest_signal_requests_total",
    "Provider webhook and lead API requests by route and outcome",
    ["route", "outcome"],
)
SIGNAL_SECONDS = Histogram(
    "ingest_signal_request_seconds",
    "Provider webhook and lead API handling time by route (server side)",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LEADS_INGESTED = Counter(
    "ingest_leads_ingested_total",
    "OrderEvents acknowledged by Kafka, per tenant, source and entity (`elsewhere`: another "
    "location's new order told to this one).",
    ["tenant_id", "source", "entity"],
)
UNROUTED = Counter(
    "ingest_unrouted_records_total",
    "Shopmonkey records attributed to no tenant, by source (webhook, poll, backfill) and reason "
    "(unknown_location: no tenant for its location; other_company; no_location; "
    "invalid_location; no_tenants).",
    ["source", "reason"],
)
DEMO_DROPPED = Counter(
    "ingest_demo_mode_dropped_total",
    "Inbound customers dropped by DEMO_MODE (email not whitelisted), per source.",
    ["source"],
)
FIELDS_ADJUSTED = Counter(
    "ingest_fields_adjusted_total",
    "Values of inbound records cut to their bound or dropped, per source, field and reason "
    "(cut, nul_removed, invalid_email, invalid_phone): the record itself was taken.",
    ["source", "field", "reason"],
)
RECORDS_REFUSED = Counter(
    "ingest_records_refused_total",
    "Polled or backfilled Shopmonkey records refused (an id over its bound), per source; the "
    "poll goes on without them.",
    ["source"],
)
SHOPMONKEY_REQUESTS = Counter(
    "ingest_shopmonkey_requests_total",
    "Shopmonkey API calls by endpoint and HTTP status (or 'error' for no answer).",
    ["endpoint", "status"],
)
CUSTOMER_CACHE = Counter(
    "ingest_customer_cache_total", "Customer look-ups by result (hit, miss).", ["result"]
)
DIRECTORY_RELOADS = Counter(
    "ingest_tenant_directory_reloads_total",
    "Loads of the in-memory directory of companies, locations and caller key hashes",
)
POLLER_ERRORS = Counter(
    "poller_errors_total",
    "Failed company polls, per Shopmonkey company and error kind.",
    ["company_id", "kind"],
)
POLLER_EVENTS = Counter(
    "poller_events_total", "OrderEvents the poller produced, per tenant.", ["tenant_id"]
)
POLLER_FILTER_IGNORED = Counter(
    "poller_filter_ignored_total",
    "Polls where Shopmonkey ignored the `where` filter (meta.total equals the unfiltered "
    "total and records outside the window came back); the poller filtered them itself.",
    ["company_id"],
)
POLLER_UNSORTED = Counter(
    "poller_unsorted_pages_total",
    "Polls where Shopmonkey ignored `orderby` (pages not ascending); the poller scanned.",
    ["company_id"],
)
POLLER_CYCLE_SECONDS = Histogram(
    "poller_cycle_seconds",
    "Duration of one poll cycle over every company.",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)


_CHILDREN: dict[tuple[int, tuple[str, ...]], Any] = {}


def child(metric: Counter | Histogram, *labels: str) -> Any:
    """`metric.labels(*labels)`, memoised: the hot webhook path skips prometheus' lock and
    label validation on every request (label sets are few: outcomes, tenants)."""
    key = (id(metric), labels)
    found = _CHILDREN.get(key)
    if found is None:
        found = _CHILDREN[key] = metric.labels(*labels)
    return found


class CursorAges(Collector):
    """`poller_cursor_age_seconds{company_id}`: seconds since the Shopmonkey company's cursors
    were last confirmed up to date (last successful poll), computed at scrape time; and
    `poller_last_success_timestamp_seconds` for alerting with `time() - x`."""

    def __init__(self) -> None:
        self._last_success: dict[str, float] = {}

    def success(self, company_id: str, at: float | None = None) -> None:
        self._last_success[company_id] = time.time() if at is None else at

    def age(self, company_id: str) -> float | None:
        at = self._last_success.get(company_id)
        return None if at is None else max(0.0, time.time() - at)

    def collect(self) -> Iterable[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "poller_cursor_age_seconds",
            "Seconds since the company was last polled successfully up to date.",
            labels=["company_id"],
        )
        last = GaugeMetricFamily(
            "poller_last_success_timestamp_seconds",
            "Unix time of the company's last successful poll.",
            labels=["company_id"],
        )
        now = time.time()
        for company_id, at in list(self._last_success.items()):
            age.add_metric([company_id], max(0.0, now - at))
            last.add_metric([company_id], at)
        yield age
        yield last


CURSOR_AGES = CursorAges()
REGISTRY.register(CURSOR_AGES)
