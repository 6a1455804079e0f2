"""A lead's records in Kafka (`leadctl leads show`, the dashboard's lead page): all of them sit
on its tenant's partition of each topic (key = tenant id, murmur2 like aiokafka/Faust), so only
that partition is read, from `since` to its end, and filtered by lead id."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.common.kafka.config import client_config
from services.common.kafka.partitioning import partition_for
from services.common.settings import CommonSettings
from services.common.topics import Topics

#: Records read per topic at most (the newest ones before the end when there are more).
DEFAULT_MAX_SCAN = 200_000


@dataclass(slots=True)
class KafkaScan:
    events: list[dict[str, Any]] = field(default_factory=list)
    truncated: dict[str, int] = field(default_factory=dict)  # topic → records not read
    errors: list[str] = field(default_factory=list)


def topic_kinds(topics: Topics) -> dict[str, str]:
    """Each lead topic and the kind of record it holds."""
    return {
        topics.order_events: "order",
        topics.touchpoint_commands: "command",
        topics.touchpoint_outcomes: "outcome",
        topics.contact_signals: "signal",
        topics.lead_changes: "state",
    }


def scan_kafka(
    settings: CommonSettings,
    *,
    lead_id: uuid.UUID,
    tenant_id: uuid.UUID,
    since: datetime,
    max_scan: int,
) -> KafkaScan:
    """Read the tenant's partition of every lead topic from `since`; keep this lead's records."""
    from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

    kinds = topic_kinds(settings.topics)
    scan = KafkaScan()
    consumer = Consumer(
        client_config(
            settings.kafka,
            **{
                "group.id": "leadctl-leads-show",
                "enable.auto.commit": False,
                "enable.partition.eof": True,
                "isolation.level": "read_committed",
            },
        )
    )
    needle = str(lead_id).encode()
    try:
        meta = consumer.list_topics(timeout=10).topics
        wanted = []
        for topic in kinds:
            if topic not in meta or not meta[topic].partitions:
                scan.errors.append(f"{topic}: missing")
                continue
            wanted.append(
                TopicPartition(topic, partition_for(tenant_id, len(meta[topic].partitions)))
            )
        since_ms = int(since.timestamp() * 1000)
        starts = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, since_ms) for tp in wanted], timeout=10
        )
        assign, ends = [], {}
        for tp, start in zip(wanted, starts, strict=True):
            low, high = consumer.get_watermark_offsets(tp, timeout=10)
            begin = high if start.offset in (OFFSET_END, -1) else max(start.offset, low)
            if high - begin > max_scan:
                scan.truncated[tp.topic] = high - max_scan - begin
                begin = high - max_scan
            if begin < high:
                assign.append(TopicPartition(tp.topic, tp.partition, begin))
                ends[tp.topic] = high
        if not assign:
            return scan
        consumer.assign(assign)
        open_topics = set(ends)
        idle = 0
        while open_topics and idle < 20:
            batch = consumer.consume(1000, timeout=0.5)
            idle = idle + 1 if not batch else 0
            for msg in batch:
                topic = str(msg.topic())
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        open_topics.discard(topic)
                    else:
                        scan.errors.append(f"{topic}: {err.str()}")
                    continue
                offset = int(msg.offset() or 0)
                if offset >= ends.get(topic, 0) - 1:
                    open_topics.discard(topic)
                value = msg.value() or b""
                if needle not in value:
                    continue
                try:
                    body = json.loads(value)
                except ValueError:
                    continue
                if not isinstance(body, dict) or body.get("lead_id") != str(lead_id):
                    continue
                ts = msg.timestamp()[1]
                scan.events.append(
                    {
                        "kind": kinds[topic],
                        "topic": topic,
                        "offset": offset,
                        "kafka_time": datetime.fromtimestamp(ts / 1000, UTC) if ts > 0 else None,
                        "body": body,
                    }
                )
    except KafkaException as exc:
        scan.errors.append(str(exc))
    finally:
        consumer.close()
    return scan
