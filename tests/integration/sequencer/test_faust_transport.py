"""The sequencer's seek back to committed offsets (`faust_transport.py`) against real Kafka:
aiokafka's own `seek_to_committed` leaves a partition whose committed offset is 0, or which
has none, where the consumer read to; Faust counts on that seek to re-read records it dropped,
so ours must bring those partitions back too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import ConsumerGroupTopicPartitions, Producer
from confluent_kafka import TopicPartition as CTopicPartition
from confluent_kafka.admin import AdminClient

from services.common.kafka.admin import ensure_topics
from services.sequencer.adapters.faust_transport import seek_back_to_committed

pytestmark = pytest.mark.integration

#: records per partition; the group committed 0 on partition 0, nothing on 1, 1 on 2
RECORDS = {0: 2, 1: 1, 2: 2}
COMMITTED = {0: 0, 2: 1}


def prepare(bootstrap: str, topic: str, group: str) -> None:
    ensure_topics(bootstrap, partitions=len(RECORDS), names=[topic])
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in RECORDS.items():
        for i in range(count):
            producer.produce(topic, value=f"{partition}-{i}".encode(), partition=partition)
    assert producer.flush(30) == 0
    admin = AdminClient({"bootstrap.servers": bootstrap})
    offsets = [CTopicPartition(topic, p, o) for p, o in COMMITTED.items()]
    request = [ConsumerGroupTopicPartitions(group, offsets)]
    for future in admin.alter_consumer_group_offsets(request).values():
        future.result(timeout=30)


async def read_to_the_end(bootstrap: str, topic: str, group: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.assign([TopicPartition(topic, p) for p in RECORDS])
    await consumer.start()
    for p in RECORDS:
        consumer.seek(TopicPartition(topic, p), 0)
    read = 0
    while read < sum(RECORDS.values()):
        batch = await consumer.getmany(timeout_ms=10_000)
        assert batch, "no records within 10 s"
        read += sum(len(records) for records in batch.values())
    return consumer


async def positions(consumer: AIOKafkaConsumer, topic: str) -> dict[int, int]:
    return {p: await consumer.position(TopicPartition(topic, p)) for p in RECORDS}


@pytest.fixture
async def read(kafka_bootstrap: str, topic_prefix: str) -> AsyncIterator[tuple[Any, str]]:
    """A consumer of the group that has read every record of the prepared topic."""
    topic, group = f"{topic_prefix}seek-back", f"{topic_prefix}group-{uuid.uuid4().hex[:6]}"
    prepare(kafka_bootstrap, topic, group)
    consumer = await read_to_the_end(kafka_bootstrap, topic, group)
    try:
        yield consumer, topic
    finally:
        await consumer.stop()


async def test_every_partition_goes_back_to_where_the_group_starts_reading_it(
    read: tuple[AIOKafkaConsumer, str],
) -> None:
    consumer, topic = read
    assert await positions(consumer, topic) == {0: 2, 1: 1, 2: 2}
    await consumer.seek_to_committed()  # aiokafka alone: only offsets > 0
    assert await positions(consumer, topic) == {0: 2, 1: 1, 2: 1}

    committed = await seek_back_to_committed(consumer, reset="earliest")
    assert {tp.partition: o for tp, o in committed.items()} == {0: 0, 1: None, 2: 1}
    assert await positions(consumer, topic) == {0: 0, 1: 0, 2: 1}

    # nothing committed on partition 1: it goes to the reset position, here the end
    await seek_back_to_committed(consumer, reset="latest")
    assert await positions(consumer, topic) == {0: 0, 1: 1, 2: 1}


async def test_topics_it_is_told_to_skip_stay_where_they_are(
    read: tuple[AIOKafkaConsumer, str],
) -> None:
    """Changelog partitions: the group commits nothing there and recovery positions them."""
    consumer, topic = read
    await seek_back_to_committed(consumer, reset="earliest", skip_topics={topic})
    assert await positions(consumer, topic) == {0: 2, 1: 1, 2: 1}
