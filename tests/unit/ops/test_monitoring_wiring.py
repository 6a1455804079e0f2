"""docker-compose.yml runs Prometheus and Grafana on the repository's ops/ files, Prometheus
scrapes every service (and the lag exporter) where it listens, and Grafana's provisioned
datasource is the one the dashboard's panels name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.unit.ops.test_grafana_dashboard import DASHBOARD, EXPORTED, ROOT, RULES

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "ops" / "prometheus.yml"
EXPORTERS = ROOT / "ops" / "prometheus-exporters.yml"
#: Service → (the port variable of its /metrics, the settings default) — services/*/settings.py.
PORTS = {
    "ingest": ("ADMIN_PORT", 3090),
    "poller": ("POLLER_PORT", 3004),
    "sequencer": ("SEQUENCER_PORT", 3002),
    "outbound": ("OUTBOUND_PORT", 3003),
}


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path → repository file of the service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = ROOT / source[2:]
    return out


def scrape_targets() -> dict[str, list[str]]:
    """Every job Prometheus runs: its own file's and those of `scrape_config_files`."""
    config = load(PROMETHEUS)
    mounted = mounts(load(COMPOSE)["services"]["prometheus"])
    jobs = list(config["scrape_configs"])
    for extra in config.get("scrape_config_files", []):
        jobs += load(mounted[extra])["scrape_configs"]
    names = [job["job_name"] for job in jobs]
    assert len(names) == len(set(names)), names
    return {
        job["job_name"]: [t for c in job["static_configs"] for t in c["targets"]] for job in jobs
    }


def test_prometheus_scrapes_every_service_on_its_port() -> None:
    services = load(COMPOSE)["services"]
    targets = scrape_targets()
    for name, (variable, default) in PORTS.items():
        assert name in services, f"docker-compose.yml has no {name} service"
        port = int(services[name].get("environment", {}).get(variable, default))
        assert targets.get(name) == [f"{name}:{port}"], (name, targets.get(name))
    for exporter in set(EXPORTED.values()):
        assert exporter in services, f"{exporter} is queried but not run by docker-compose.yml"
        assert targets.get(exporter) == [f"{exporter}:9308"]


def test_compose_mounts_the_ops_files_where_their_configs_expect_them() -> None:
    services = load(COMPOSE)["services"]
    prometheus, grafana = mounts(services["prometheus"]), mounts(services["grafana"])
    assert prometheus["/etc/prometheus/prometheus.yml"] == PROMETHEUS
    assert prometheus["/etc/prometheus/prometheus-rules.yml"] == RULES
    assert prometheus["/etc/prometheus/prometheus-exporters.yml"] == EXPORTERS
    assert load(PROMETHEUS)["rule_files"] == ["/etc/prometheus/prometheus-rules.yml"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]
    provisioning = grafana["/etc/grafana/provisioning"]
    dashboards_dir = grafana["/var/lib/grafana/dashboards"]
    assert DASHBOARD.parent == dashboards_dir and DASHBOARD.exists()
    [provider] = load(provisioning / "dashboards" / "lead-orchestrator.yml")["providers"]
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    [source] = load(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert source["url"] == "http://prometheus:9090" and source["type"] == "prometheus"
    board = json.loads(DASHBOARD.read_text())
    uids = {t["datasource"]["uid"] for p in board["panels"] for t in p.get("targets", [])}
    assert uids == {source["uid"]}


def test_alerts_and_panels_cover_consumer_lag_and_every_service() -> None:
    board = json.loads(DASHBOARD.read_text())
    exprs = " ".join(t["expr"] for p in board["panels"] for t in p.get("targets", []))
    for prefix in ("ingest_", "poller_", "outbound_", "sequencer_", "projection_", "kafka_"):
        assert prefix in exprs, f"no panel for {prefix}* metrics"
    alerts = {r["alert"]: r for g in load(RULES)["groups"] for r in g["rules"]}
    assert "kafka_consumergroup_lag" in alerts["ConsumerLagHigh"]["expr"]
    assert all(job in alerts["ServiceDown"]["expr"] for job in PORTS)
