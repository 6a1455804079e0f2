"""Raising an existing topic's durability in place (`leadctl topics fix`): more replicas through
a partition reassignment (Kafka's AlterPartitionReassignments, which confluent-kafka's admin
API lacks, sent with aiokafka's protocol classes), then min.insync.replicas (an incremental
config change). Replicas first: a min ISR above the replicas a partition has would refuse
every acks=all write. The brokers copy the data; the command waits until every new replica
is in sync."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.protocol.admin import AlterPartitionReassignmentsRequest
from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)

from services.common.errors import InfrastructureError
from services.common.kafka.admin import admin_client
from services.common.kafka.connection import KafkaConnection

#: topic → partition → the replica brokers it should have
Plan = dict[str, dict[int, list[int]]]


def replica_plan(kafka: KafkaConnection, topics: list[str], replication: int) -> Plan:
    """For each partition of `topics` with fewer than `replication` replicas, its replicas
    plus the least-loaded brokers that do not hold it yet (its leader stays first)."""
    meta = admin_client(kafka).list_topics(timeout=15)
    brokers = sorted(meta.brokers)
    if replication > len(brokers):
        raise InfrastructureError(
            f"KAFKA_REPLICATION_FACTOR={replication} needs {replication} brokers; "
            f"the cluster has {len(brokers)}"
        )
    load: Counter[int] = Counter({b: 0 for b in brokers})
    for tmeta in meta.topics.values():
        for pmeta in tmeta.partitions.values():
            load.update(pmeta.replicas)
    plan: Plan = {}
    for topic in topics:
        for partition, pmeta in sorted(meta.topics[topic].partitions.items()):
            replicas = list(pmeta.replicas)
            while len(replicas) < replication:
                pick = min((b for b in brokers if b not in replicas), key=lambda b: (load[b], b))
                replicas.append(pick)
                load[pick] += 1
            if len(replicas) != len(pmeta.replicas):
                plan.setdefault(topic, {})[partition] = replicas
    return plan


async def _reassign(kafka: KafkaConnection, plan: Plan, timeout_ms: int) -> None:
    admin = AIOKafkaAdminClient(**kafka.aiokafka(), request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        request = AlterPartitionReassignmentsRequest(
            timeout_ms,
            [
                (topic, [(p, replicas, {}) for p, replicas in parts.items()], {})  # type: ignore[misc]
                for topic, parts in plan.items()
            ],
            {},
        )
        response = await admin._send_to_controller(request)
    finally:
        await admin.close()
    if response.error_code:
        raise InfrastructureError(f"reassignment refused: {response.error_message}")
    for topic, partitions, _ in response.responses:
        for partition, code, message, _ in partitions:
            if code:
                raise InfrastructureError(f"reassigning {topic}[{partition}]: {message}")


def start_reassignment(kafka: KafkaConnection, plan: Plan, timeout: float = 30.0) -> None:
    """Ask the controller to move every partition of `plan` to its new replica set."""
    if plan:
        asyncio.run(_reassign(kafka, plan, int(timeout * 1000)))


def pending(kafka: KafkaConnection, plan: Plan) -> list[str]:
    """`topic[partition]` of the plan whose new replicas are not all assigned and in sync."""
    meta = admin_client(kafka).list_topics(timeout=15).topics
    out = []
    for topic, parts in plan.items():
        for partition, replicas in parts.items():
            pmeta = meta[topic].partitions[partition]
            if set(pmeta.replicas) != set(replicas) or set(pmeta.isrs) != set(replicas):
                out.append(f"{topic}[{partition}]")
    return out


def wait_in_sync(kafka: KafkaConnection, plan: Plan, timeout: float) -> list[str]:
    """Wait until every partition of `plan` has its new replicas in sync; returns the ones
    still moving at `timeout` (empty when done)."""
    deadline = time.monotonic() + timeout
    left = pending(kafka, plan)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = pending(kafka, plan)
    return left


def set_min_insync(kafka: KafkaConnection, topics: Mapping[str, int]) -> None:
    """Set min.insync.replicas of each topic (topic → value)."""
    if not topics:
        return
    resources = [
        ConfigResource(
            ConfigResource.Type.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(
                    "min.insync.replicas",
                    str(value),
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for name, value in topics.items()
    ]
    admin = admin_client(kafka)  # alive until its futures are done
    for resource, future in admin.incremental_alter_configs(resources).items():
        try:
            future.result(30)
        except KafkaException as exc:
            raise InfrastructureError(
                f"setting min.insync.replicas of {resource.name}: {exc}"
            ) from exc
