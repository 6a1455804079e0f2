"""The shared Kafka adapter against the real broker: both clients agree on partitions,
round trips in both directions, buffered per-partition produce, DLQ routing, and at-least-once
offsets."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas import OrderEvent, lead_id_for_order
from services.common.kafka.codec import decode
from services.common.kafka.consumer import AtLeastOnceConsumer, process
from services.common.kafka.dlq import DeadLetters
from services.common.kafka.partition_buffer import PartitionBuffer
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics
from tests.support.deployment_secrets import LEAD_IDS

pytestmark = pytest.mark.integration


def order_event(tenant: uuid.UUID, order_id: str) -> OrderEvent:
    now = datetime.now(UTC)
    return OrderEvent(
        event_id=f"shopmonkey:order:{order_id}:1",
        tenant_id=tenant,
        lead_id=lead_id_for_order(LEAD_IDS, tenant, order_id),
        source="webhook",
        entity="order",
        operation="insert",
        occurred_at=now,
        ingested_at=now,
        order={"order_id": order_id},
        customer={"email": "jane@example.com"},
    )


async def test_confluent_and_aiokafka_put_each_tenant_on_the_same_partition(
    kafka_bootstrap: str, topics: Topics
) -> None:
    tenants = [str(uuid.uuid4()) for _ in range(200)]
    ours = KafkaProducer(kafka_bootstrap, client_id="test-partition").start()
    theirs = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await theirs.start()
    try:
        ours_parts = [
            (await ours.send_raw(topics.order_events, key=t, value=b"x")).partition for t in tenants
        ]
        theirs_parts = [
            (await theirs.send_and_wait(topics.order_events, key=t.encode(), value=b"x")).partition
            for t in tenants
        ]
    finally:
        await theirs.stop()
        ours.close()
    assert ours_parts == theirs_parts  # 200 of 200 agree
    assert len(set(ours_parts)) == 4  # and they spread over every partition

    # Control: librdkafka's default partitioner (CRC32) disagrees, which is why we set murmur2.
    default = Producer({"bootstrap.servers": kafka_bootstrap})
    default_parts: list[int] = []
    for t in tenants:
        default.produce(
            topics.order_events,
            key=t,
            value=b"x",
            on_delivery=lambda err, msg: default_parts.append(msg.partition()),
        )
        default.poll(0)
    default.flush(10)
    agree = sum(
        1 for t, p in zip(tenants, ours_parts, strict=True) if default_parts[tenants.index(t)] == p
    )
    assert agree < 150


async def test_a_partition_buffer_flush_puts_keyed_records_where_every_producer_would(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """`PartitionBuffer`: keyed records land on their key's partition (the one `send_raw`
    gives the key), `flush` returns once every record is acknowledged (readable), and
    `take_offsets` tells how far the `add`ed records of each partition reached."""
    tenants = [str(uuid.uuid4()) for _ in range(20)]
    producer = KafkaProducer(kafka_bootstrap, client_id="test-buffer").start()
    buffer = PartitionBuffer(producer)
    try:
        for tenant in tenants * 2:
            buffer.add_keyed(topics.order_events, tenant, b"buffered")
        for n in range(3):
            buffer.add(topics.lead_changes, 1, b"k", b"v%d" % n)
        await buffer.flush()
        offsets = dict(buffer.take_offsets())
        expected = {
            t: (await producer.send_raw(topics.contact_signals, key=t, value=b"x")).partition
            for t in tenants
        }
    finally:
        producer.close()
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"g-{uuid.uuid4()}"})
    try:
        consumer.assign([TopicPartition(topics.order_events, p, 0) for p in range(4)])
        placed: list[tuple[str, int]] = []
        for _ in range(20):
            placed += [
                (m.key().decode(), m.partition())
                for m in consumer.consume(100, timeout=0.5)
                if m.error() is None
            ]
            if len(placed) >= 40:
                break
    finally:
        consumer.close()
    assert len(placed) == 40  # acknowledged before `flush` returned, none lost
    assert set(placed) == set(expected.items())
    assert offsets == {(topics.lead_changes, 1): 2}


async def test_round_trip_confluent_producer_to_aiokafka_consumer(
    kafka_bootstrap: str, topics: Topics
) -> None:
    tenant = uuid.uuid4()
    sent = [order_event(tenant, f"o{i}") for i in range(20)]
    async with KafkaProducer(kafka_bootstrap, client_id="test-rt") as producer:
        acks = [await producer.send(topics.order_events, e, key=str(tenant)) for e in sent]
    assert len({a.partition for a in acks}) == 1  # one tenant, one partition, in order
    consumer = AIOKafkaConsumer(
        topics.order_events,
        bootstrap_servers=kafka_bootstrap,
        group_id=f"g-{uuid.uuid4()}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        got: list[OrderEvent] = []
        async with asyncio.timeout(20):
            while len(got) < len(sent):
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    got.extend(decode(OrderEvent, r.value) for r in records)
    finally:
        await consumer.stop()
    assert got == sent


async def test_round_trip_aiokafka_producer_to_at_least_once_consumer(
    kafka_bootstrap: str, topics: Topics
) -> None:
    tenant = uuid.uuid4()
    sent = [order_event(tenant, f"o{i}") for i in range(10)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, enable_idempotence=True)
    await producer.start()
    try:
        for e in sent:
            await producer.send_and_wait(
                topics.order_events, e.to_bytes(), key=str(tenant).encode()
            )
    finally:
        await producer.stop()
    consumer = AtLeastOnceConsumer(
        kafka_bootstrap,
        group_id=f"g-{uuid.uuid4()}",
        topics=[topics.order_events],
        client_id="test",
    )
    got = []
    try:
        for _ in range(40):
            for msg in consumer.poll_batch(50, timeout=0.5):
                got.append(decode(OrderEvent, msg.value()))
                consumer.store(msg)
            if len(got) == len(sent):
                break
    finally:
        consumer.close()
    assert got == sent


def test_bad_record_goes_to_dlq_with_reason_and_the_stream_moves_on(
    kafka_bootstrap: str, topics: Topics
) -> None:
    tenant = str(uuid.uuid4())
    producer = KafkaProducer(kafka_bootstrap, client_id="test-dlq").start()
    good = order_event(uuid.UUID(tenant), "ok")
    for value in (b'{"not": "an order event"}', good.to_bytes()):
        producer.send_sync(topics.order_events, key=tenant, value=value)
    group = f"g-{uuid.uuid4()}"
    consumer = AtLeastOnceConsumer(
        kafka_bootstrap, group_id=group, topics=[topics.order_events], client_id="test"
    )
    dead = DeadLetters(producer, service="test-suite")
    handled: list[OrderEvent] = []
    try:
        for _ in range(40):
            for msg in consumer.poll_batch(10, timeout=0.5):
                process(msg, lambda m: handled.append(decode(OrderEvent, m.value())), dead)
                consumer.store(msg)
            if handled:
                break
    finally:
        consumer.close()
        producer.close()
    assert handled == [good]  # the bad record did not stop the good one

    dlq = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": f"g-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }
    )
    dlq.subscribe([topics.order_events + ".dlq"])
    try:
        msg = None
        for _ in range(40):
            msg = dlq.poll(0.5)
            if msg is not None and msg.error() is None:
                break
        assert msg is not None and msg.error() is None
    finally:
        dlq.close()
    headers = dict(msg.headers() or [])
    assert msg.value() == b'{"not": "an order event"}'  # the raw record, unchanged
    assert msg.key() == tenant.encode()
    assert b"event_id" in headers["dlq.reason"]
    assert headers["dlq.source.topic"] == topics.order_events.encode()
    assert headers["dlq.service"] == b"test-suite"


def test_unprocessed_records_are_read_again_after_a_crash(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """At-least-once: an offset is stored only after processing; a failing handler's record
    is re-delivered to the next consumer of the group."""
    tenant = str(uuid.uuid4())
    producer = KafkaProducer(kafka_bootstrap, client_id="test-alo").start()
    for i in range(5):
        producer.send_sync(topics.touchpoint_commands, key=tenant, value=f"r{i}".encode())
    producer.close()
    group = f"g-{uuid.uuid4()}"

    def consume(fail_on: bytes | None, expect: int) -> list[bytes]:
        consumer = AtLeastOnceConsumer(
            kafka_bootstrap, group_id=group, topics=[topics.touchpoint_commands], client_id="t"
        )
        seen: list[bytes] = []
        try:
            for _ in range(40):
                for msg in consumer.poll_batch(10, timeout=0.5):
                    if msg.value() == fail_on:
                        raise RuntimeError("crash while processing")
                    seen.append(msg.value())
                    consumer.store(msg)
                if len(seen) >= expect:
                    break
        except RuntimeError:
            pass
        finally:
            consumer.close()
        return seen

    first = consume(fail_on=b"r2", expect=5)
    assert first == [b"r0", b"r1"]
    assert consume(fail_on=None, expect=3) == [b"r2", b"r3", b"r4"]


def test_partitions_paused_before_a_rebalance_are_read_again_after_it(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """Outbound pauses its partitions while a batch is blocked; when its group rebalances
    meanwhile (a second member, a session that timed out when a broker died), the partitions
    it gets back must be read again: librdkafka alone keeps them paused forever."""
    group, topic = f"g-{uuid.uuid4()}", topics.touchpoint_commands

    def member(client_id: str) -> AtLeastOnceConsumer:
        return AtLeastOnceConsumer(
            kafka_bootstrap,
            group_id=group,
            topics=[topic],
            client_id=client_id,
            **{"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
        )

    def poll_until(consumers: list[AtLeastOnceConsumer], done: object, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not done():  # type: ignore[operator]
            for c in consumers:
                c.poll_batch(10, timeout=0.1)

    first = member("first")
    try:
        poll_until([first], lambda: len(first.assignment()) == 4, 20)
        first.raw.pause(first.assignment())  # a blocked batch
        second = member("second")
        poll_until([first, second], lambda: second.assignment(), 20)
        second.close()  # the group rebalances again: every partition back to `first`
        poll_until([first], lambda: len(first.assignment()) == 4, 20)
        assert len(first.assignment()) == 4
        producer = KafkaProducer(kafka_bootstrap, client_id="test-pause").start()
        for i in range(8):
            producer.send_sync(topic, key=str(uuid.uuid4()), value=f"r{i}".encode())
        producer.close()
        got: list[bytes] = []
        deadline = time.monotonic() + 15
        while len(got) < 8 and time.monotonic() < deadline:
            got += [m.value() for m in first.poll_batch(10, timeout=0.2)]
        assert sorted(got) == [f"r{i}".encode() for i in range(8)]
    finally:
        first.close()


def test_send_fails_cleanly_when_no_broker_answers() -> None:
    from services.common.errors import DeliveryError

    producer = KafkaProducer("127.0.0.1:1", client_id="nobody", config={"message.timeout.ms": 1500})
    producer.start()
    try:
        with pytest.raises(DeliveryError):
            producer.send_sync("leads.order-events.v1", key="k", value=b"v", timeout=10)
    finally:
        producer.close(timeout=1)


def test_a_poll_returns_the_records_ready_without_waiting_for_a_full_batch(
    kafka_bootstrap: str, topics: Topics
) -> None:
    """One record waiting, a batch of 500 asked for with a long timeout: the poll hands the
    record over as soon as it is there, not when the timeout ends; nothing ready and nothing
    coming: it waits the timeout and returns none."""
    tenant = uuid.uuid4()
    consumer = AtLeastOnceConsumer(
        kafka_bootstrap,
        group_id=f"g-{uuid.uuid4()}",
        topics=[topics.order_events],
        client_id="test",
    )
    producer = KafkaProducer(kafka_bootstrap, client_id="test").start()
    try:
        deadline = time.monotonic() + 30
        while not consumer.assignment():  # joined the group, partitions assigned
            assert time.monotonic() < deadline, "no assignment"
            consumer.poll_batch(10, timeout=0.2)
        started = time.monotonic()
        assert consumer.poll_batch(500, timeout=0.3) == []
        assert time.monotonic() - started >= 0.25
        event = order_event(tenant, "o1")
        producer.send_sync(topics.order_events, key=str(tenant), value=event.to_bytes())
        started = time.monotonic()
        got = consumer.poll_batch(500, timeout=20.0)
        waited = time.monotonic() - started
        assert [decode(OrderEvent, m.value()) for m in got] == [event]
        assert waited < 10.0, f"waited {waited:.1f} s for a batch of 500 to fill"
    finally:
        producer.close()
        consumer.close()
