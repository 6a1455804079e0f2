"""docker-compose.yml and the Dockerfile cannot run here (no Docker engine), so their
structure is checked instead: they cannot silently rot."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOYABLES = ("ingest", "poller", "sequencer", "outbound")


def compose() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def default(value: str) -> str:
    """What compose makes of `${VAR:-default}` when VAR is unset."""
    m = re.fullmatch(r"\$\{[A-Z_]+:-(.*)\}", value)
    return m[1] if m else value


def test_infrastructure_uses_official_images_with_healthchecks() -> None:
    services = compose()["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    assert re.fullmatch(r"apache/kafka:4\.\d+\.\d+", kafka["image"])
    assert kafka["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert "ZOOKEEPER" not in str(kafka["environment"]).upper()
    assert postgres["image"].startswith("postgres:")
    for svc in (kafka, postgres):
        assert svc["healthcheck"]["test"]


def test_one_service_per_deployable_built_from_the_dockerfile() -> None:
    services = compose()["services"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", dockerfile, re.MULTILINE))
    for name in DEPLOYABLES:
        svc = services[name]
        assert svc["build"]["target"] == name
        assert name in targets
        assert svc["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        env = svc["environment"]
        assert default(env["KAFKA_BOOTSTRAP_SERVERS"]) == "kafka:19092"
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert "@postgres:5432/" in env["DATABASE_URL"]
    migrate = services["migrate"]
    assert migrate["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "migrate" in targets


CLUSTER = ("kafka-1", "kafka-2", "kafka-3")


def test_cluster_profile_is_a_three_node_kraft_quorum_with_rf3_min_isr2() -> None:
    services = compose()["services"]
    single = services["kafka"]
    assert "profiles" not in single  # the default single broker is untouched
    assert single["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:9093"
    envs = [services[name]["environment"] for name in CLUSTER]
    voters = {
        f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in zip(CLUSTER, envs, strict=True)
    }
    host_ports = []
    for name, env in zip(CLUSTER, envs, strict=True):
        svc = services[name]
        assert svc["profiles"] == ["cluster"]
        assert svc["image"] == single["image"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert set(env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")) == voters
        assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
        assert f"PLAINTEXT://{name}:19092" in env["KAFKA_ADVERTISED_LISTENERS"]
        assert svc["healthcheck"]["test"]
        assert svc["volumes"][0].endswith(":/var/lib/kafka/data")
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == 2
        assert int(env["KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"]) == 2
        [port] = svc["ports"]
        address, host_port, _ = port.split(":")
        assert address == "127.0.0.1"
        host_ports.append(int(host_port))
        assert f"HOST://localhost:{host_ports[-1]}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert len({env["KAFKA_NODE_ID"] for env in envs}) == 3
    assert len({env["CLUSTER_ID"] for env in envs}) == 1  # one cluster id for the three
    assert len({services[name]["volumes"][0] for name in CLUSTER}) == 3
    # the host ports of the local cluster (infra/kafka.sh, KAFKA_CLUSTER_PORT_BASE=29092)
    assert host_ports == [29092, 29192, 29292]
    script = (ROOT / "infra" / "kafka.sh").read_text()
    assert 'KAFKA_CLUSTER_PORT_BASE="${KAFKA_CLUSTER_PORT_BASE:-29092}"' in script
    for name in CLUSTER:
        assert f"{name}-data" in compose()["volumes"]


def test_cluster_profile_has_the_settings_of_the_local_cluster() -> None:
    """Every broker setting infra/kafka/cluster.properties.tmpl gives the local cluster's nodes
    is set on the compose cluster's nodes too (the image maps KAFKA_X_Y to x.y)."""
    template = (ROOT / "infra" / "kafka" / "cluster.properties.tmpl").read_text()
    keys = re.findall(r"^([a-z][a-z0-9.]*)=", template, re.MULTILINE)
    assert "min.insync.replicas" in keys
    for name in CLUSTER:
        env = compose()["services"][name]["environment"]
        for key in keys:
            if key == "controller.quorum.bootstrap.servers":  # static voters in both
                continue
            assert "KAFKA_" + key.upper().replace(".", "_") in env, (name, key)


def test_compose_passes_every_safety_and_provider_variable() -> None:
    services = compose()["services"]
    for name in DEPLOYABLES:
        assert "LEAD_EMAIL_WHITELIST" in services[name]["environment"]
    outbound = services["outbound"]["environment"]
    for var in (
        "SENDGRID_API_KEY",
        "SENDGRID_FROM_EMAIL",
        "SENDGRID_API_BASE_URL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "TWILIO_API_BASE_URL",
        "LEAD_PHONE_WHITELIST",
        "SMS_ALLOWED_REGIONS",
    ):
        assert var in outbound
    ingest = services["ingest"]["environment"]
    for var in (
        "SHOPMONKEY_API_KEY",
        "SHOPMONKEY_COMPANY_ID",
        "SHOPMONKEY_API_BASE_URL",
        "WEBHOOK_PORT",
    ):
        assert var in ingest


def test_compose_passes_the_kafka_replication_and_security_settings() -> None:
    """Every service container, and the migrate job, gets the same Kafka settings as the
    processes `make run` starts: replication of the topics they create, transport security."""
    services = compose()["services"]
    wanted = {
        "KAFKA_REPLICATION_FACTOR",
        "KAFKA_MIN_INSYNC_REPLICAS",
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SSL_CA_LOCATION",
        "KAFKA_SSL_CERTIFICATE_LOCATION",
        "KAFKA_SSL_KEY_LOCATION",
        "KAFKA_SSL_KEY_PASSWORD",
    }
    for name in (*DEPLOYABLES, "migrate"):
        env = services[name]["environment"]
        assert wanted <= set(env), (name, wanted - set(env))
        assert env["KAFKA_SASL_PASSWORD"] == "${KAFKA_SASL_PASSWORD:-}"  # from .env, no default
    assert default(services["ingest"]["environment"]["KAFKA_REPLICATION_FACTOR"]) == "1"


def test_env_example_documents_every_setting() -> None:
    from services.ingest.settings import IngestSettings
    from services.outbound.settings import OutboundSettings
    from services.sequencer.settings import SequencerSettings

    documented = set(re.findall(r"^([A-Z_]+)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    seed = {
        "DATABASE_URL",
        "SHOPMONKEY_API_KEY",
        "SHOPMONKEY_COMPANY_ID",
        "SENDGRID_API_KEY",
        "SENDGRID_FROM_EMAIL",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "TENANT_ID",
        "LEAD_EMAIL_WHITELIST",
        "DEMO_MODE",
        "POLL_INTERVAL_SECONDS",
        "WEBHOOK_PORT",
        "LOG_LEVEL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "KAFKA_PARTITIONS",
        "SHOPMONKEY_API_BASE_URL",
        "SENDGRID_API_BASE_URL",
        "TWILIO_API_BASE_URL",
        "CHAT_BASE_URL",
    }
    assert seed <= documented, seed - documented
    for cls in (IngestSettings, OutboundSettings, SequencerSettings):
        for name in cls.model_fields:
            assert name.upper() in documented, f"{name.upper()} missing from .env.example"


def _mounts(service: dict) -> dict[str, str]:  # type: ignore[type-arg]
    """Container path → repository path of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = source[2:]
    return out


def test_compose_wires_prometheus_to_every_service_and_grafana_to_prometheus() -> None:
    services = compose()["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    assert prometheus["image"].startswith("prom/prometheus:")
    assert grafana["image"].startswith("grafana/grafana:")
    mounts = _mounts(prometheus)
    config_path = next(a.split("=", 1)[1] for a in prometheus["command"] if "config.file" in a)
    config = yaml.safe_load((ROOT / mounts[config_path]).read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    assert targets == {
        "ingest": "ingest:3090",  # the admin listener: the public port serves no metrics
        "poller": "poller:3004",
        "sequencer": "sequencer:3002",
        "outbound": "outbound:3003",
    }
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
    assert services["ingest"]["environment"]["WEBHOOK_PORT"] == 3000
    assert services["ingest"]["environment"]["ADMIN_PORT"] == 3090
    assert services["poller"]["environment"]["POLLER_PORT"] == 3004
    assert services["sequencer"]["environment"]["SEQUENCER_PORT"] == 3002
    assert services["outbound"]["environment"]["OUTBOUND_PORT"] == 3003
    for rule_file in config.get("rule_files", []):
        assert rule_file in mounts, f"{rule_file} is not mounted into prometheus"
        assert yaml.safe_load((ROOT / mounts[rule_file]).read_text())["groups"]

    gmounts = _mounts(grafana)
    provisioning = ROOT / gmounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    [prom] = datasource["datasources"]
    assert prom["type"] == "prometheus" and prom["url"] == "http://prometheus:9090"
    assert "127.0.0.1:9090:9090" in prometheus["ports"]
    provider = yaml.safe_load((provisioning / "dashboards" / "lead-orchestrator.yml").read_text())
    dashboards_dir = provider["providers"][0]["options"]["path"]
    assert (ROOT / gmounts[dashboards_dir] / "lead-orchestrator.json").is_file()
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
    assert not any(p.startswith("3000:") for p in grafana["ports"])  # ingest has 3000


#: The one port published on every interface: what outside parties call (ingest's public one).
PUBLIC_PORTS = {("ingest", "3000:3000")}


def test_compose_has_no_open_doors() -> None:
    """Only ingest's public port is published on every interface; everything else (Kafka,
    PostgreSQL, Prometheus, Grafana, ingest's admin listener) on 127.0.0.1 or not at all;
    passwords and deployment secrets come from the environment with no default; Grafana has
    no anonymous access."""
    services = compose()["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if (name, port) in PUBLIC_PORTS:
                continue
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    assert "127.0.0.1:3090:3090" in services["ingest"]["ports"]  # admin: loopback only
    text = (ROOT / "docker-compose.yml").read_text()
    assert "postgres:postgres@" not in text
    assert re.search(r"POSTGRES_PASSWORD: \$\{POSTGRES_PASSWORD:\?", text)
    for name, svc in services.items():
        for key, value in (svc.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "_KEYS")):
                # required (`:?`), or optional with an empty default (the Kafka SASL password
                # of a PLAINTEXT cluster): never a default value
                required = ":?" in value if isinstance(value, str) else False
                optional = isinstance(value, str) and re.fullmatch(r"\$\{[A-Z_]+:-\}", value)
                assert isinstance(value, str) and (required or optional), (name, key, value)
    grafana = services["grafana"]["environment"]
    assert grafana["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert "GF_AUTH_ANONYMOUS_ORG_ROLE" not in grafana
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    for name in ("ingest", "poller"):
        env = services[name]["environment"]
        for var in ("ID_SECRET", "LINK_SIGNING_KEYS", "SECRETS_ENCRYPTION_KEYS"):
            assert env[var] == f"${{{var}:?set {var}}}", (name, var)
    assert services["outbound"]["environment"]["LINK_SIGNING_KEYS"].startswith("${LINK_")
    assert services["migrate"]["environment"]["SECRETS_ENCRYPTION_KEYS"].startswith("${SECRETS_")
