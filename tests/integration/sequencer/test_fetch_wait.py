"""The worker consumer's fetch wait (`faust_transport.FETCH_MAX_WAIT_MS`) against real Kafka.

aiokafka keeps one fetch in flight per broker, of the partitions whose fetched records are all
consumed. A fetch that left while a busy partition still had records queued holds only idle
partitions, and the broker keeps it for the whole wait unless one of those gets a record; the
busy partition, emptied meanwhile, is fetched only after it. With Faust's 1,500 ms a record
produced then waited over a second, though the consumer asked for it at once."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from confluent_kafka import Producer

from services.common.kafka.admin import ensure_topics
from services.sequencer.adapters.faust_transport import FETCH_MAX_WAIT_MS, bound_fetch_wait

pytestmark = pytest.mark.integration

#: what Faust gives aiokafka (faust/transport/drivers/aiokafka.py)
FAUST_FETCH_MAX_WAIT_MS = 1500


def produce(producer: Producer, topic: str, value: bytes) -> None:
    producer.produce(topic, value=value, partition=0)
    assert producer.flush(30) == 0


async def delay_of_a_record_behind_a_queued_one(
    bootstrap: str, prefix: str, consumer: AIOKafkaConsumer
) -> float:
    """Seconds from producing a record to the busy partition until the consumer has it, when
    the fetch in flight left while that partition still had a record queued."""
    busy, idle = f"{prefix}busy", f"{prefix}idle"
    ensure_topics(bootstrap, partitions=1, names=[busy, idle])
    producer = Producer({"bootstrap.servers": bootstrap})
    produce(producer, busy, b"0")
    produce(producer, busy, b"1")
    consumer.assign([TopicPartition(busy, 0), TopicPartition(idle, 0)])
    await consumer.start()
    try:
        first = await asyncio.wait_for(consumer.getone(), 30)
        assert first.value == b"0"
        # record 1 stays queued; once aiokafka's prefetch backoff (0.1 s) is over, a fetch of
        # the idle partition alone goes out (were it later, it would still be of that one
        # alone: record 1 is consumed only below)
        await asyncio.sleep(0.15)
        produced = time.monotonic()
        produce(producer, busy, b"2")
        assert (await asyncio.wait_for(consumer.getone(), 30)).value == b"1"
        assert (await asyncio.wait_for(consumer.getone(), 30)).value == b"2"
        return time.monotonic() - produced
    finally:
        await consumer.stop()


def faust_like_consumer(bootstrap: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FAUST_FETCH_MAX_WAIT_MS,
    )


async def test_a_busy_partition_is_not_kept_out_of_fetches_by_idle_ones(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    consumer = bound_fetch_wait(faust_like_consumer(kafka_bootstrap))
    delay = await delay_of_a_record_behind_a_queued_one(kafka_bootstrap, topic_prefix, consumer)
    # the bound plus a produce and two round trips on a shared machine
    print(f"bounded: {delay:.3f} s")
    assert delay < FETCH_MAX_WAIT_MS / 1000 + 0.4, f"{delay:.3f} s"


async def test_faust_s_own_wait_holds_it_out_for_most_of_its_length(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    """The case above without the bound: what the bound is for (and proof the test above
    builds the situation it claims to)."""
    consumer = faust_like_consumer(kafka_bootstrap)
    delay = await delay_of_a_record_behind_a_queued_one(kafka_bootstrap, topic_prefix, consumer)
    print(f"Faust's wait: {delay:.3f} s")
    assert delay > 0.8, f"{delay:.3f} s"
