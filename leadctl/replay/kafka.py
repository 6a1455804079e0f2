"""Kafka side of `leadctl replay`: partitions, watermarks, offsets by time, a consumer group's
committed offsets, members and offset changes (confluent-kafka AdminClient + a group-less
consumer), and a bounded key scan for per-tenant counts. Synchronous: a CLI's helper."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from services.common.domain.replay import TP, tp_key
from services.common.errors import InfrastructureError
from services.common.kafka.admin import admin_client
from services.common.kafka.config import client_config
from services.common.kafka.connection import KafkaConnection, KafkaTarget
from services.common.topics import Topics

TIMEOUT = 15.0


@dataclass(frozen=True, slots=True)
class GroupState:
    state: str
    members: tuple[str, ...]  # "client_id@host" of each active member

    @property
    def active(self) -> bool:
        return bool(self.members)


def pipeline_groups(
    topics: Topics, *, sequencer: str, outbound: str, projection: str
) -> dict[str, list[str]]:
    """Each consumer group of the pipeline and the topics it reads."""
    return {
        sequencer: [topics.order_events, topics.touchpoint_outcomes, topics.contact_signals],
        outbound: [topics.touchpoint_commands],
        projection: [topics.lead_changes],
    }


class KafkaView:
    """What replay needs to know about (and change in) the cluster."""

    def __init__(self, kafka: KafkaTarget) -> None:
        self.kafka = KafkaConnection.of(kafka)
        self.admin = admin_client(self.kafka)
        # No group: only metadata, watermarks, offsets_for_times and assign()-ed scans.
        self.consumer = Consumer(
            client_config(
                self.kafka,
                **{
                    "group.id": f"leadctl-replay-probe-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    "enable.partition.eof": True,
                    "auto.offset.reset": "earliest",
                    "fetch.max.bytes": 50 * 1024 * 1024,
                },
            )
        )

    def close(self) -> None:
        self.consumer.close()

    # topics ---------------------------------------------------------------------------------
    def partitions(self, topics: Iterable[str]) -> list[TP]:
        try:
            meta = self.admin.list_topics(timeout=TIMEOUT)
        except KafkaException as exc:
            where = self.kafka.describe()
            raise InfrastructureError(f"Kafka at {where} unreachable: {exc}") from exc
        found: list[TP] = []
        for topic in topics:
            tmeta = meta.topics.get(topic)
            if tmeta is None or tmeta.error is not None:
                raise InfrastructureError(f"topic {topic} does not exist")
            found.extend((topic, p) for p in sorted(tmeta.partitions))
        return found

    def watermarks(self, tps: Iterable[TP]) -> dict[TP, tuple[int, int]]:
        return {
            tp: self.consumer.get_watermark_offsets(TopicPartition(*tp), timeout=TIMEOUT)
            for tp in tps
        }

    def offsets_at(self, tps: list[TP], moment: datetime) -> dict[TP, int | None]:
        """Earliest offset whose timestamp ≥ `moment`; None when every record is older."""
        ms = int(moment.timestamp() * 1000)
        asked = [TopicPartition(t, p, ms) for t, p in tps]
        answers = self.consumer.offsets_for_times(asked, timeout=TIMEOUT)
        return {(a.topic, a.partition): (a.offset if a.offset >= 0 else None) for a in answers}

    # groups ---------------------------------------------------------------------------------
    def committed(self, group: str, tps: list[TP]) -> dict[TP, int | None]:
        request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in tps])
        future = self.admin.list_consumer_group_offsets([request])[group]
        result = future.result(timeout=TIMEOUT)
        return {
            (tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None)
            for tp in result.topic_partitions
        }

    def caught_up(self, group: str, topics: Iterable[str]) -> bool:
        """`group` committed the end of every non-empty partition of `topics`."""
        tps = self.partitions(topics)
        done = self.committed(group, tps)
        return all(
            high == 0 or (done.get(tp) or 0) >= high
            for tp, (_, high) in self.watermarks(tps).items()
        )

    def group_state(self, group: str) -> GroupState:
        future = self.admin.describe_consumer_groups([group], request_timeout=TIMEOUT)[group]
        try:
            desc = future.result(timeout=TIMEOUT)
        except KafkaException as exc:
            if exc.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND:
                return GroupState("Dead", ())
            raise
        members = tuple(f"{m.client_id}@{m.host}" for m in desc.members)
        state = getattr(desc.state, "name", str(desc.state))
        return GroupState(str(state), members)

    def alter(self, group: str, offsets: dict[TP, int]) -> None:
        request = ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, off) for (t, p), off in sorted(offsets.items())]
        )
        future = self.admin.alter_consumer_group_offsets([request])[group]
        result = future.result(timeout=TIMEOUT)
        for tp in result.topic_partitions:
            if tp.error is not None:
                raise InfrastructureError(
                    f"altering {group} offset on {tp.topic}:{tp.partition}: {tp.error}"
                )

    # scans ----------------------------------------------------------------------------------
    def records(
        self, tp: TP, start: int, end: int, *, batch: int = 10_000
    ) -> Iterator[tuple[bytes | None, bytes | None, int]]:
        """(key, value, offset) of `tp` in [start, end), in order."""
        if end <= start:
            return
        self.consumer.assign([TopicPartition(tp[0], tp[1], start)])
        try:
            done = False
            while not done:
                msgs = self.consumer.consume(num_messages=batch, timeout=1.0)
                if not msgs:
                    _, high = self.consumer.get_watermark_offsets(
                        TopicPartition(*tp), timeout=TIMEOUT, cached=False
                    )
                    if high <= start:
                        return
                for msg in msgs:
                    err = msg.error()
                    if err is not None:
                        if err.code() == KafkaError._PARTITION_EOF:
                            done = True
                            break
                        raise InfrastructureError(f"reading {tp_key(tp)}: {err.str()}")
                    offset = msg.offset() or 0
                    if offset >= end:
                        done = True
                        break
                    start = offset + 1
                    yield msg.key(), msg.value(), offset
                    if start >= end:
                        done = True
                        break
        finally:
            self.consumer.unassign()

    def count_keys(self, tp: TP, start: int, end: int, limit: int) -> tuple[Counter[str], int]:
        """Records per key in [start, min(end, start + limit)); returns (counts, scanned)."""
        counts: Counter[str] = Counter()
        scanned = 0
        for key, _, _ in self.records(tp, start, min(end, start + limit)):
            counts[key.decode(errors="replace") if key else ""] += 1
            scanned += 1
        return counts, scanned
