"""Topic provisioning (`leadctl topics create`): every topic of DESIGN §2 and its DLQ."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewTopic,
    OffsetSpec,
)

from services.common.errors import InfrastructureError
from services.common.kafka.config import client_config
from services.common.topics import Topics

log = logging.getLogger(__name__)

#: Main topics keep everything: Kafka is the source of truth and replays start anywhere.
MAIN_TOPIC_CONFIG = {"retention.ms": "-1", "min.insync.replicas": "1"}
#: Dead letters are for operators: kept 30 days.
DLQ_TOPIC_CONFIG = {"retention.ms": str(30 * 24 * 3600 * 1000)}


@dataclass(frozen=True, slots=True)
class TopicReport:
    name: str
    partitions: int
    action: str  # created | exists | mismatch


def wanted_topics(prefix: str = "") -> list[str]:
    return Topics(prefix).with_dlqs()


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient(client_config(bootstrap))


def ensure_topics(
    bootstrap: str,
    *,
    partitions: int,
    replication: int = 1,
    names: list[str] | None = None,
    timeout: float = 30.0,
) -> list[TopicReport]:
    """Create the missing topics; report existing ones, flagging a partition-count mismatch
    (Faust needs co-partitioned topics, so a mismatch is an error to fix by hand)."""
    admin = admin_client(bootstrap)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise InfrastructureError(f"Kafka at {bootstrap} unreachable: {exc}") from exc
    names = names or wanted_topics()
    reports: list[TopicReport] = []
    to_create = []
    for name in names:
        if name in existing:
            count = len(existing[name].partitions)
            reports.append(
                TopicReport(name, count, "exists" if count == partitions else "mismatch")
            )
        else:
            config = DLQ_TOPIC_CONFIG if name.endswith(".dlq") else MAIN_TOPIC_CONFIG
            to_create.append(
                NewTopic(
                    name, num_partitions=partitions, replication_factor=replication, config=config
                )
            )
    if to_create:
        for name, future in admin.create_topics(to_create, operation_timeout=timeout).items():
            try:
                future.result()
                reports.append(TopicReport(name, partitions, "created"))
            except KafkaException as exc:
                if exc.args[0].code() == 36:  # TOPIC_ALREADY_EXISTS: lost a race, fine
                    reports.append(TopicReport(name, partitions, "exists"))
                else:
                    raise InfrastructureError(f"creating {name}: {exc}") from exc
        created = [r.name for r in reports if r.action == "created"]
        _wait_until_served(bootstrap, admin, created, partitions, timeout)
    order = {n: i for i, n in enumerate(names)}
    return sorted(reports, key=lambda r: order[r.name])


def _wait_until_served(
    bootstrap: str, admin: AdminClient, names: list[str], partitions: int, timeout: float
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
        admin = admin_client(bootstrap)
