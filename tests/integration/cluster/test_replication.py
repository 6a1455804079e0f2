"""On a 3-node cluster with KAFKA_REPLICATION_FACTOR=3: every topic the project creates has 3
replicas and the min.insync.replicas the settings ask (here 3, where the cluster's own default
is 2): main topics and DLQs (`leadctl topics create`), and the sequencer's Faust changelogs and
ticks topic; topics made less durable before are raised to the settings (RF 3 and the default
min ISR 2) by `leadctl topics fix`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka.admin import ConfigResource

from bench.chaos.cluster import LocalCluster
from services.common.kafka.admin import ensure_topics
from services.common.topics import Topics
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.integration


def durability(cluster: LocalCluster, names: list[str]) -> dict[str, tuple[int, int]]:
    """topic → (smallest replica count of its partitions, min.insync.replicas)."""
    admin = cluster.admin()
    topics = admin.list_topics(timeout=10).topics
    configs = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, n) for n in names])
    out = {}
    for resource, future in configs.items():
        replicas = min(len(p.replicas) for p in topics[resource.name].partitions.values())
        out[resource.name] = (replicas, int(future.result(10)["min.insync.replicas"].value))
    return out


def leadctl(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadctl.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def cluster_env(cluster: LocalCluster, prefix: str, db_url: str) -> dict[str, str]:
    return os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "3",
        "KAFKA_REPLICATION_FACTOR": "3",
        "DATABASE_URL": db_url,
    }


def test_topics_create_and_the_sequencers_own_topics_follow_the_settings(
    cluster: LocalCluster, db_url: str, tmp_path: Path
) -> None:
    prefix = f"r{uuid.uuid4().hex[:8]}."
    env = cluster_env(cluster, prefix, db_url) | {"KAFKA_MIN_INSYNC_REPLICAS": "3"}
    created = leadctl(["topics", "create"], env)
    assert created.returncode == 0, created.stdout + created.stderr
    names = Topics(prefix).with_dlqs()
    assert durability(cluster, names) == {n: (3, 3) for n in names}

    port = free_port()
    worker = subprocess.Popen(
        [sys.executable, "-m", "leadctl.main", "sequencer", "--no-projection"],
        cwd=ROOT,
        env=env
        | {
            "SEQUENCER_PORT": str(port),
            "SEQUENCER_HOST": "127.0.0.1",
            "SEQUENCER_DATA_DIR": str(tmp_path / "data"),
        },
        stdout=(tmp_path / "sequencer.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    app = f"{prefix}lead-sequencer"
    own = [f"{app}-leads-changelog", f"{app}-customers-changelog", f"{app}-ticks"]
    try:
        deadline = time.monotonic() + 120
        while not set(own) <= set(cluster.admin().list_topics(timeout=10).topics):
            assert worker.poll() is None, (tmp_path / "sequencer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the Faust app did not create its topics"
            time.sleep(0.5)
        assert durability(cluster, own) == {n: (3, 3) for n in own}
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(30)


def test_topics_fix_raises_replicas_and_min_isr_of_existing_topics(
    cluster: LocalCluster, db_url: str
) -> None:
    prefix = f"f{uuid.uuid4().hex[:8]}."
    names = Topics(prefix).with_dlqs()
    ensure_topics(cluster.bootstrap, partitions=3, replication=1, min_insync=1, names=names)
    assert set(durability(cluster, names).values()) == {(1, 1)}
    env = cluster_env(cluster, prefix, db_url)

    reported = leadctl(["topics", "create"], env)
    assert reported.returncode != 0
    assert "run `leadctl topics fix`" in reported.stdout + reported.stderr

    fixed = leadctl(["topics", "fix"], env)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert durability(cluster, names) == {n: (3, 2) for n in names}
    again = leadctl(["topics", "create"], env)
    assert again.returncode == 0 and again.stdout.count("exists ") == len(names), again.stdout
