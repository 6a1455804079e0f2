"""The Grafana dashboard and alert rules only query metrics the services really define, and
cover the seed's monitoring list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "lead-orchestrator.json"
RULES = ROOT / "ops" / "prometheus-rules.yml"

#: Series Prometheus makes itself.
BUILTIN = {"up"}
#: Series of the exporters docker-compose.yml runs (checked to be wired in below).
EXPORTED = {"kafka_consumergroup_lag": "kafka-exporter"}
#: The loop-lag histogram every metrics listener names after its service
#: (services/common/loop_lag.py, started by observability.add_observability_routes).
LOOP_LAG = {f"{s}_event_loop_lag_seconds" for s in ("ingest", "poller", "sequencer", "outbound")}
_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
    "unless", "offset", "inf", "nan",
}  # fmt: skip
_DEFINED = re.compile(
    r"(?:Counter|Gauge|Histogram|Summary|Info|Enum|MetricFamily)\(\s*\"([a-zA-Z_:][a-zA-Z0-9_:]*)\"",
    re.S,
)


def defined_metrics() -> set[str]:
    """Base names of every instrument declared under services/ (prometheus_client)."""
    names = set()
    for path in (ROOT / "services").rglob("*.py"):
        for name in _DEFINED.findall(path.read_text()):
            names.add(name.removesuffix("_total"))
    return names | LOOP_LAG


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (functions, labels and keywords removed)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    # number literals (1e-9, 0.95, 0x1F, 1.5E+3) before identifiers: `1e-9` is no series `e`
    expr = re.sub(r"(?<![\w:])(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)", "", expr)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        after = expr[m.end() :].lstrip()
        if (
            after.startswith("(")
            or m.group() in _KEYWORDS
            or expr[m.start() - 1 : m.start()] == "$"
        ):
            continue
        names.add(m.group())
    return names


def base(name: str) -> str:
    for suffix in ("_bucket", "_count", "_sum", "_created", "_total"):
        if name.endswith(suffix):
            return name.removesuffix(suffix)
    return name


def known(name: str, defined: set[str]) -> bool:
    return name in BUILTIN or name in EXPORTED or base(name) in defined


def panel_exprs() -> list[tuple[str, str]]:
    board = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in board["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_parser_finds_series_and_ignores_functions_and_labels() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, provider) (rate(x_seconds_bucket{a="b"}'
        "[$__rate_interval]))) / on (job) up"
    )
    assert metric_names(expr) == {"x_seconds_bucket", "up"}
    assert metric_names("sum(rate(a_total[5m])) / clamp_min(sum(b), 1e-9) > 0.05") == {
        "a_total",
        "b",
    }
    assert metric_names("x_2e5 * 2E+3 + time() - 0x1F") == {"x_2e5"}
    assert metric_names("c > bool 0") == {"c"}


def test_every_panel_queries_metrics_that_the_services_define() -> None:
    defined = defined_metrics()
    assert "ingest_webhook_requests" in defined and "outbound_touchpoints" in defined
    exprs = panel_exprs()
    assert len(exprs) >= 10
    for title, expr in exprs:
        names = metric_names(expr)
        assert names, f"{title}: no metric in {expr!r}"
        unknown = {n for n in names if not known(n, defined)}
        assert not unknown, f"panel {title!r} queries undefined metrics {unknown}"


def test_alert_rules_query_defined_metrics() -> None:
    defined = defined_metrics()
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    assert rules
    for rule in rules:
        unknown = {n for n in metric_names(rule["expr"]) if not known(n, defined)}
        assert not unknown, f"alert {rule['alert']} queries undefined metrics {unknown}"


def test_dashboard_covers_the_seed_monitoring_list() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"]
    datasources = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
    assert datasources == {"prometheus"}  # the provisioned datasource's uid
    exprs = " ".join(e for _, e in panel_exprs())
    checks = {
        "webhook processing rate": "rate(ingest_webhook_requests_total",
        "touch point success rate": 'outbound_touchpoints_total{status="sent"}',
        "outbound skip rate (whitelist)": 'reason=~"whitelist_empty|not_whitelisted"',
        "lead ingestion rate": "rate(ingest_leads_ingested_total",
        "SMS/email delivery": "sum by (channel)",
    }
    missing = [item for item, needle in checks.items() if needle not in exprs]
    assert not missing, missing
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
