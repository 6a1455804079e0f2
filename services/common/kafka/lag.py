"""Consumer lag per group and partition, and dead-letter counts (status CLI, dashboard)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition

from services.common.kafka.admin import admin_client
from services.common.kafka.config import client_config
from services.common.kafka.connection import KafkaTarget
from services.common.topics import Topics


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed: int  # -1001 (librdkafka's OFFSET_INVALID) when nothing is committed yet
    end: int

    @property
    def lag(self) -> int:
        return max(0, self.end - max(self.committed, 0))


def _watermarks(
    kafka: KafkaTarget, tps: list[TopicPartition]
) -> dict[tuple[str, int], tuple[int, int]]:
    consumer = Consumer(
        client_config(kafka, **{"group.id": "lead-lag-probe", "enable.auto.commit": False})
    )
    try:
        return {
            (tp.topic, tp.partition): consumer.get_watermark_offsets(tp, timeout=5) for tp in tps
        }
    finally:
        consumer.close()


def consumer_lag(
    kafka: KafkaTarget, topics: Topics, *, groups: list[str] | None = None, timeout: float = 10.0
) -> list[PartitionLag]:
    """Lag of every consumer group (or `groups`) on this environment's topics."""
    admin = admin_client(kafka)
    if groups is None:
        listed = admin.list_consumer_groups().result(timeout=timeout)
        groups = sorted(g.group_id for g in listed.valid)
    ours = set(topics.with_dlqs())
    rows: list[PartitionLag] = []
    for group in groups:
        futures = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        committed = [
            tp for tp in futures[group].result(timeout=timeout).topic_partitions if tp.topic in ours
        ]
        marks = _watermarks(kafka, committed)
        rows.extend(
            PartitionLag(
                group, tp.topic, tp.partition, tp.offset, marks[(tp.topic, tp.partition)][1]
            )
            for tp in committed
        )
    return rows


def dlq_counts(kafka: KafkaTarget, topics: Topics, *, timeout: float = 10.0) -> dict[str, int]:
    """Records currently held in each dead-letter topic."""
    admin = admin_client(kafka)
    meta = admin.list_topics(timeout=timeout).topics
    tps = [
        TopicPartition(name, p)
        for name in topics.with_dlqs()
        if name.endswith(".dlq") and name in meta
        for p in meta[name].partitions
    ]
    counts: dict[str, int] = {}
    for (topic, _), (low, high) in _watermarks(kafka, tps).items():
        counts[topic] = counts.get(topic, 0) + max(0, high - low)
    return counts
