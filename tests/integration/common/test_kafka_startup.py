"""What every service and leadctl checks of Kafka at start, on the real broker:

- a wrong SASL password (or an untrusted CA) against the SASL_SSL listener stops each of them
  within seconds with an error naming the setting, where librdkafka alone would retry forever;
- topics less durable than KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS get a warning
  per topic at every service's start, and `leadctl topics create` reports them as a mismatch
  with the command that fixes them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from services.common.topics import Topics
from tests.conftest import ROOT, free_port
from tests.support.sasl import sasl_env

pytestmark = pytest.mark.integration

SERVICES = ("ingest", "poller", "sequencer", "outbound")
LEADCTL = (
    ("topics", "create"),
    ("topics", "fix"),
    ("status",),
    ("replay", "--since", "1d"),
    ("leads", "show", str(uuid.uuid4())),
)


def argv(name: str, port: int) -> list[str]:
    """The command line of service `name` with its health port on `port`."""
    return [name, "--port", str(port)]


def env_of(db_url: str, prefix: str, tmp: Path, **extra: str) -> dict[str, str]:
    return os.environ | {
        "DATABASE_URL": db_url,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "4",
        "SEQUENCER_DATA_DIR": str(tmp / "sequencer"),
        "WEBHOOK_HOST": "127.0.0.1",
        "LOG_FORMAT": "text",
        **extra,
    }


def asking_for_rf3(
    topics: Topics, kafka_bootstrap: str, db_url: str, tmp_path: Path
) -> dict[str, str]:
    """The shared broker and the test's topics (RF 1), with settings asking for RF 3."""
    return env_of(
        db_url,
        topics.prefix,
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        KAFKA_REPLICATION_FACTOR="3",
    )


def run(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "leadctl.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


@pytest.fixture(scope="module")
def wrong_password() -> dict[str, str]:
    """The SASL_SSL listener's settings with a password it refuses."""
    return sasl_env() | {"KAFKA_SASL_PASSWORD": "not-the-password"}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_with_a_wrong_password_stops_at_once_naming_the_setting(
    service: str, wrong_password: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    env = env_of(db_url, f"t{uuid.uuid4().hex[:8]}.", tmp_path, **wrong_password)
    code, output, seconds = run(argv(service, free_port()), env)
    assert code != 0, output
    assert "refused the credentials" in output and "KAFKA_SASL_PASSWORD" in output, output
    assert "not-the-password" not in output  # the secret itself is never printed
    assert seconds < 30, seconds  # the check itself takes ~0.5 s; the rest is Python start-up


@pytest.mark.parametrize("args", LEADCTL, ids=lambda a: " ".join(a[:2]))
def test_leadctl_with_a_wrong_password_stops_at_once_naming_the_setting(
    args: tuple[str, ...], wrong_password: dict[str, str], db_url: str, tmp_path: Path
) -> None:
    env = env_of(db_url, f"t{uuid.uuid4().hex[:8]}.", tmp_path, **wrong_password)
    code, output, seconds = run(list(args), env)
    assert code != 0, output
    assert "refused the credentials" in output and "KAFKA_SASL_PASSWORD" in output, output
    assert seconds < 30, seconds


def test_an_untrusted_broker_certificate_names_the_ca_setting(db_url: str, tmp_path: Path) -> None:
    system_bundle = "/etc/ssl/certs/ca-certificates.crt"
    env = env_of(db_url, "t.", tmp_path, **(sasl_env() | {"KAFKA_SSL_CA_LOCATION": system_bundle}))
    code, output, _ = run(argv("outbound", free_port()), env)
    assert code != 0 and "KAFKA_SSL_CA_LOCATION" in output, output


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_warns_at_start_about_each_topic_below_the_settings(
    service: str,
    topics: Topics,
    kafka_bootstrap: str,
    db_url: str,
    tmp_path: Path,
) -> None:
    """The test's topics have 1 replica and min ISR 1; the settings ask for 3 and 2."""
    log = tmp_path / f"{service}.log"
    env = asking_for_rf3(topics, kafka_bootstrap, db_url, tmp_path)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadctl.main", *argv(service, free_port())],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            text = log.read_text(errors="replace")
            if text.count("less durable than") >= len(topics.with_dlqs()):
                break
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    text = log.read_text(errors="replace")
    for name in topics.with_dlqs():
        line = next((x for x in text.splitlines() if f"topic {name} is less durable" in x), "")
        assert "KAFKA_REPLICATION_FACTOR=3 / KAFKA_MIN_INSYNC_REPLICAS=2" in line, text[-3000:]
        assert "replication factor 1 < 3" in line and "min.insync.replicas 1 < 2" in line
        assert "leadctl topics fix" in line


def test_leadctl_topics_create_reports_under_replicated_topics_with_the_fix(
    topics: Topics, kafka_bootstrap: str, db_url: str, tmp_path: Path
) -> None:
    env = asking_for_rf3(topics, kafka_bootstrap, db_url, tmp_path)
    code, output, _ = run(["topics", "create"], env)
    assert code != 0, output
    assert output.count("mismatch ") == len(topics.with_dlqs()), output
    assert "replication factor 1 < 3; min.insync.replicas 1 < 2" in output
    assert "10 topic(s) below KAFKA_REPLICATION_FACTOR=3 / KAFKA_MIN_INSYNC_REPLICAS=2" in output
    assert "run `leadctl topics fix`" in output
    # as the settings ask: nothing to report
    code, output, _ = run(["topics", "create"], env | {"KAFKA_REPLICATION_FACTOR": "1"})
    assert code == 0 and output.count("exists ") == len(topics.with_dlqs()), output
