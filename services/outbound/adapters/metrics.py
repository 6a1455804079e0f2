"""Prometheus instruments of the outbound service (seed "Monitoring": touch point success rate,
outbound skip rate, SMS/Email delivery), registered once per process on the default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TOUCHPOINTS = Counter(
    "outbound_touchpoints_total",
    "Touch-point decisions by channel, outcome status and reason.",
    ["channel", "status", "reason"],
)
DUPLICATES = Counter(
    "outbound_duplicate_commands_total",
    "Commands the ledger already held (redelivery, replay): no new effect.",
    ["channel", "status"],
)
SKIP_RATIO = Gauge(
    "outbound_skip_ratio",
    "Share of first-time decisions that were skipped since the process started.",
)
PROVIDER_SECONDS = Histogram(
    "outbound_provider_request_seconds",
    "Latency of one provider request, by provider and result.",
    ["provider", "result"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PROVIDER_RETRIES = Counter(
    "outbound_provider_retries_total",
    "Provider calls retried (not processed: 429, refused, 503 …) or reconciled.",
    ["provider", "kind"],
)
LEDGER_CLAIM_SECONDS = Histogram(
    "outbound_ledger_claim_seconds",
    "Latency of claiming a command in job_executions (one round trip incl. gate facts).",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
)
UNKNOWN = Counter(
    "outbound_unknown_total",
    "Sends whose fate could not be established (needs an operator).",
    ["channel", "reason"],
)
STALE_CLAIMS = Gauge(
    "outbound_stale_claims",
    "Ledger rows left 'claimed' past the stale timeout at the last sweep.",
)
INFRA_RETRIES = Counter(
    "outbound_infrastructure_retries_total",
    "PostgreSQL/Kafka operations retried after an infrastructure error.",
    ["operation"],
)
DEAD_LETTERS = Counter("outbound_dead_letters_total", "Commands sent to the DLQ.")

_decided = {"all": 0, "skipped": 0}


def record_decision(channel: str, status: str, reason: str) -> None:
    """Count one first-time decision; the label keeps only the reason's code (before ':')."""
    TOUCHPOINTS.labels(channel, status, reason.split(":", 1)[0][:60]).inc()
    _decided["all"] += 1
    if status == "skipped":
        _decided["skipped"] += 1
    SKIP_RATIO.set(_decided["skipped"] / _decided["all"])
