"""Prometheus metrics of the sequencer and its projection (served on /metrics)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS = Counter(
    "sequencer_records_total",
    "Records consumed, by topic and result (applied, duplicate, ignored, dead_lettered).",
    ["topic", "result"],
)
COMMANDS = Counter(
    "sequencer_commands_total", "Touch-point commands emitted, by channel.", ["channel"]
)
LEAD_CHANGES = Counter("sequencer_lead_changes_total", "LeadChanged records emitted.")
BATCH_SECONDS = Histogram(
    "sequencer_batch_seconds",
    "Time to process one batch, outputs and table writes flushed.",
    ["agent"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
BATCH_STAGE_SECONDS = Histogram(
    "sequencer_batch_stage_seconds",
    "Time per stage of a batch: handle (domain), outputs_ack (commands and lead changes"
    " acknowledged), tables (state written), changelog_ack (changelog acknowledged).",
    ["stage"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
BATCH_RECORDS = Histogram(
    "sequencer_batch_records",
    "Records per batch, by agent.",
    ["agent"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000),
)
DUE_ENTRIES = Gauge("sequencer_due_index_entries", "Entries in the due index of this worker.")
REPLAY_BEHIND = Gauge(
    "sequencer_replay_records_behind",
    "Records of the current replay run the group has not committed past yet (0: no run).",
)
TICKS = Counter("sequencer_ticks_total", "Timer ticks published for active partitions.")
PLAN_ERRORS = Counter(
    "sequencer_tenant_plan_errors_total", "Invalid tenant nurture plans replaced by the default."
)
PROJECTED = Counter(
    "projection_rows_total", "Lead changes projected into PostgreSQL, by result.", ["result"]
)
PROJECTION_BATCH_SECONDS = Histogram(
    "projection_batch_seconds",
    "Time to upsert one batch of lead changes.",
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
