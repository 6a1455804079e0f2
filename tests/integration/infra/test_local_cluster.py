"""`LOCAL_KAFKA_BROKERS=3 infra/kafka.sh` against a private state directory and free ports:
three combined broker+controller nodes come up as one cluster (internal topics RF 3 / min ISR
2), a topic with RF 3 / min ISR 2 keeps taking acks=all writes while one node is SIGKILLed,
nothing is lost, and the node comes back with `start-node`. The shared broker is not touched.
Three JVMs: ~30-45 s on a 2-core machine."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from bench.chaos.cluster import QUIET, LocalCluster, free_port_base

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path / "kafka", free_port_base())
    try:
        yield cluster
    finally:
        cluster.down()


def topic_partitions(admin: AdminClient, topic: str, count: int) -> list[Any]:
    """The metadata of a just-created topic's partitions: the broker that answers may learn
    of the topic from the controller a moment after `create_topics` returned."""
    deadline = time.monotonic() + 30
    while True:
        meta = admin.list_topics(topic, timeout=10).topics[topic]
        if meta.error is None and len(meta.partitions) == count:
            return list(meta.partitions.values())
        assert time.monotonic() < deadline, f"{topic}: {meta.error} {meta.partitions}"
        time.sleep(0.2)


def produce(bootstrap: str, topic: str, values: range) -> None:
    errors: list[object] = []
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "logger": QUIET,
            "acks": "all",
            "enable.idempotence": True,
            "message.timeout.ms": 60000,
        }
    )
    for i in values:
        producer.produce(
            topic, str(i).encode(), on_delivery=lambda err, _m: err and errors.append(err)
        )
    assert producer.flush(90) == 0
    assert not errors, errors[:3]


def consume_all(bootstrap: str, topic: str, expected: int) -> set[int]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "logger": QUIET,
            "group.id": f"check-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 60
    while len(seen) < expected and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            seen.add(int(msg.value()))
    consumer.close()
    return seen


def test_three_node_cluster_survives_a_sigkilled_node(cluster: LocalCluster) -> None:
    started = time.monotonic()
    up = cluster.run("up")
    up_seconds = time.monotonic() - started
    assert "cluster of 3 ready" in up.stdout, up.stdout
    assert f"KAFKA_BOOTSTRAP_SERVERS={cluster.bootstrap}" in up.stdout
    assert cluster.run("bootstrap").stdout.strip() == cluster.bootstrap
    assert "reused" in cluster.run("up").stdout  # idempotent

    admin = AdminClient({"bootstrap.servers": cluster.bootstrap, "logger": QUIET})
    assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]
    broker = admin.describe_configs([ConfigResource("broker", "1")])
    config = next(iter(broker.values())).result(10)
    assert config["offsets.topic.replication.factor"].value == "3"
    assert config["transaction.state.log.replication.factor"].value == "3"
    assert config["transaction.state.log.min.isr"].value == "2"
    assert config["min.insync.replicas"].value == "2"

    topic = f"cluster-check-{uuid.uuid4().hex[:8]}"
    admin.create_topics(
        [NewTopic(topic, 3, replication_factor=3, config={"min.insync.replicas": "2"})]
    )[topic].result(30)
    partitions = topic_partitions(admin, topic, 3)
    assert {len(p.replicas) for p in partitions} == {3}
    produce(cluster.bootstrap, topic, range(100))

    pid = int(cluster.run("pid", "2").stdout)
    killed = cluster.run("kill-node", "2")
    assert "SIGKILL" in killed.stdout
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    status = cluster.run("status", check=False)
    assert status.returncode == 3 and "node 2: stopped" in status.stdout, status.stdout

    # two in-sync replicas left = min ISR: acks=all writes still succeed, nothing is lost
    produce(cluster.bootstrap, topic, range(100, 200))
    assert consume_all(cluster.bootstrap, topic, 200) == set(range(200))

    restarted = time.monotonic()
    cluster.run("start-node", "2")
    restart_seconds = time.monotonic() - restarted
    assert cluster.run("status").returncode == 0
    assert sorted(admin.list_topics(timeout=10).brokers) == [1, 2, 3]

    down = cluster.run("down")
    assert "cluster stopped" in down.stdout
    for pid in cluster.pids():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    print(f"cluster up {up_seconds:.1f}s, node 2 restarted in {restart_seconds:.1f}s")
