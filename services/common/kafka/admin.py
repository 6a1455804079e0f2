"""Topic provisioning (`leadctl topics create`): every topic of DESIGN §2 and its DLQ."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from services.common.errors import InfrastructureError
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
    return AdminClient({"bootstrap.servers": bootstrap})


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
    order = {n: i for i, n in enumerate(names)}
    return sorted(reports, key=lambda r: order[r.name])
