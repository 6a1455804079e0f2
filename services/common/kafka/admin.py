"""Topic provisioning (`leadctl topics create`): every topic of DESIGN §2 and its DLQ, with the
partition count, replication factor and min.insync.replicas the settings ask for, and the
inspection of existing topics against them (`leadctl topics create`, every service at start).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
)

from services.common.errors import InfrastructureError
from services.common.kafka.config import client_config
from services.common.kafka.connection import KafkaConnection, KafkaTarget
from services.common.topics import Topics

log = logging.getLogger(__name__)

#: Main topics keep everything: Kafka is the source of truth and replays start anywhere.
MAIN_TOPIC_CONFIG = {"retention.ms": "-1"}
#: Dead letters are for operators: kept 30 days.
DLQ_TOPIC_CONFIG = {"retention.ms": str(30 * 24 * 3600 * 1000)}


@dataclass(frozen=True, slots=True)
class Durability:
    """Replicas of every partition and min.insync.replicas (KAFKA_REPLICATION_FACTOR and
    KAFKA_MIN_INSYNC_REPLICAS): with acks=all, a write is acknowledged once `min_insync`
    replicas hold it, so RF 3 / min ISR 2 loses nothing when one broker dies."""

    replication: int = 1
    min_insync: int = 1

    @classmethod
    def of(cls, replication: int, min_insync: int | None = None) -> Durability:
        return cls(replication, min(2, replication) if min_insync is None else min_insync)

    def topic_config(self) -> dict[str, str]:
        return {"min.insync.replicas": str(self.min_insync)}


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    partitions: int
    action: str  # created | exists | mismatch
    replication: int = 0
    min_insync: int = 0
    #: Why an existing topic is a mismatch, e.g. "replication factor 1 < 3".
    problems: tuple[str, ...] = ()

    @property
    def under_replicated(self) -> bool:
        """Replication or min ISR below the settings (fixable: `leadctl topics fix`)."""
        return any(not p.startswith("partitions") for p in self.problems)


def wanted_topics(prefix: str = "") -> list[str]:
    return Topics(prefix).with_dlqs()


def admin_client(kafka: KafkaTarget) -> AdminClient:
    return AdminClient(client_config(kafka))


def inspect_topics(
    kafka: KafkaTarget,
    names: Iterable[str],
    *,
    durability: Durability,
    partitions: int | None = None,
    timeout: float = 30.0,
) -> list[TopicReport]:
    """Existing topics among `names` as they are, each flagged `mismatch` when its partition
    count differs from `partitions` (if given) or its replication factor or min ISR is below
    `durability`; missing topics are left out."""
    admin = admin_client(kafka)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise InfrastructureError(f"Kafka at {_where(kafka)} unreachable: {exc}") from exc
    present = [n for n in names if n in existing]
    min_isr = _min_insync(admin, present, timeout)
    reports = []
    for name in present:
        parts = existing[name].partitions.values()
        count = len(parts)
        replication = min((len(p.replicas) for p in parts), default=0)
        problems = []
        if partitions is not None and count != partitions:
            problems.append(f"partitions {count} != {partitions}")
        if replication < durability.replication:
            problems.append(f"replication factor {replication} < {durability.replication}")
        if min_isr[name] < durability.min_insync:
            problems.append(f"min.insync.replicas {min_isr[name]} < {durability.min_insync}")
        action = "mismatch" if problems else "exists"
        reports.append(
            TopicReport(name, count, action, replication, min_isr[name], tuple(problems))
        )
    return reports


def _min_insync(admin: AdminClient, names: list[str], timeout: float) -> dict[str, int]:
    """Effective min.insync.replicas of each topic (its own, else the broker's default)."""
    if not names:
        return {}
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, n) for n in names], request_timeout=timeout
    )
    out = {}
    for resource, future in futures.items():
        try:
            entry = future.result(timeout)["min.insync.replicas"]
        except KafkaException as exc:
            raise InfrastructureError(f"describing {resource.name}: {exc}") from exc
        out[resource.name] = int(entry.value)
    return out


def ensure_topics(
    kafka: KafkaTarget,
    *,
    partitions: int,
    replication: int = 1,
    min_insync: int | None = None,
    names: list[str] | None = None,
    config: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> list[TopicReport]:
    """Create the missing topics; report existing ones, flagging a partition-count mismatch
    (Faust needs co-partitioned topics, so a mismatch is an error to fix by hand) and a
    replication factor or min ISR below the settings (`leadctl topics fix` raises them).
    `config`: the new topics' configuration instead of our topics' (e.g. Faust's own)."""
    durability = Durability.of(replication, min_insync)
    names = names or wanted_topics()
    reports = inspect_topics(
        kafka, names, durability=durability, partitions=partitions, timeout=timeout
    )
    seen = {r.name for r in reports}
    to_create = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=durability.replication,
            config=dict(
                config
                if config is not None
                else (DLQ_TOPIC_CONFIG if name.endswith(".dlq") else MAIN_TOPIC_CONFIG)
            )
            | durability.topic_config(),
        )
        for name in names
        if name not in seen
    ]
    if to_create:
        admin = admin_client(kafka)
        for name, future in admin.create_topics(to_create, operation_timeout=timeout).items():
            try:
                future.result()
                reports.append(
                    TopicReport(
                        name, partitions, "created", durability.replication, durability.min_insync
                    )
                )
            except KafkaException as exc:
                if exc.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: lost a race, fine
                    reports.append(TopicReport(name, partitions, "exists"))
                else:
                    raise InfrastructureError(f"creating {name}: {exc}") from exc
        created = [r.name for r in reports if r.action == "created"]
        _wait_until_served(kafka, admin, created, partitions, timeout)
    order = {n: i for i, n in enumerate(names)}
    return sorted(reports, key=lambda r: order[r.name])


def _where(kafka: KafkaTarget) -> str:
    return KafkaConnection.of(kafka).describe()


def _wait_until_served(
    kafka: KafkaTarget, admin: AdminClient, names: list[str], partitions: int, timeout: float
) -> None:
    """Block until the broker answers offset requests for every partition of `names`.
    CreateTopics returns once the controller has committed the topics; the leader takes a
    moment more to serve them (a reader that comes at once can get NOT_LEADER_FOR_PARTITION).
    Each retry asks through a new client: librdkafka keeps the metadata it first saw (a topic
    without leaders) for minutes."""
    pending = [TopicPartition(n, p) for n in names for p in range(partitions)]
    deadline = time.monotonic() + timeout
    while pending:
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        futures = admin.list_offsets({tp: latest for tp in pending}, request_timeout=5)
        failed = []
        for tp, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                failed.append((tp, exc))
        if not failed:
            return
        if time.monotonic() > deadline:
            first, why = failed[0]
            raise InfrastructureError(
                f"{len(failed)} new partition(s) not served after {timeout:.0f} s, "
                f"e.g. {first.topic}[{first.partition}]: {why}"
            )
        pending = [tp for tp, _ in failed]
        log.debug("%d new partition(s) not served yet: %s", len(failed), failed[0][1])
        time.sleep(0.05)
        admin = admin_client(kafka)
