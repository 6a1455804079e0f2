"""The acked producer against the real broker, in both of its modes: delivery reports served
by a poll thread, or by the event loop that sent (`poll_in_loop`, what ingest uses); and the
per-record deadline of `submit(timeout=...)`."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from services.common.errors import DeliveryError, DeliveryTimeout
from services.common.kafka.producer import KafkaProducer

pytestmark = pytest.mark.integration

MODES = [pytest.param(False, id="poll-thread"), pytest.param(True, id="poll-in-loop")]


def records_in(bootstrap: str, topic: str) -> list[bytes]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"check-{topic}", "enable.auto.commit": False}
    )
    try:
        parts = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[bytes] = []
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
        deadline = time.monotonic() + 20
        while len(out) < sum(ends.values()) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                out.append(msg.value())
        return out
    finally:
        consumer.close()


@pytest.mark.parametrize("in_loop", MODES)
async def test_concurrent_sends_are_all_acknowledged_and_in_kafka(
    kafka_bootstrap: str, topics: Any, in_loop: bool
) -> None:
    producer = KafkaProducer(
        kafka_bootstrap, client_id="test-acks", poll_in_loop=in_loop, config={"linger.ms": 5}
    ).start()
    try:
        values = [f"r{i}".encode() for i in range(500)]
        acks = await asyncio.gather(
            *(
                producer.send_raw(topics.order_events, key=f"tenant-{i % 7}", value=v)
                for i, v in enumerate(values)
            )
        )
    finally:
        await asyncio.to_thread(producer.close)
    assert len({(a.partition, a.offset) for a in acks}) == 500
    assert sorted(records_in(kafka_bootstrap, topics.order_events)) == sorted(values)


async def test_loop_mode_serves_blocking_sends_from_another_thread_too(
    kafka_bootstrap: str, topics: Any
) -> None:
    """Without a poll thread, a blocking send polls for itself; reports of the loop's records
    that it happens to serve reach their futures through the loop, none is lost."""
    producer = KafkaProducer(kafka_bootstrap, client_id="test-mixed", poll_in_loop=True).start()
    sync_results: list[Any] = []

    def blocking() -> None:
        for i in range(50):
            sync_results.append(
                producer.send_sync(topics.contact_signals, key="k", value=f"s{i}".encode())
            )

    try:
        thread = threading.Thread(target=blocking)
        thread.start()
        acks = await asyncio.wait_for(
            asyncio.gather(
                *(
                    producer.send_raw(topics.order_events, key="t", value=f"a{i}".encode())
                    for i in range(200)
                )
            ),
            timeout=30,
        )
        await asyncio.to_thread(thread.join, 30)
    finally:
        await asyncio.to_thread(producer.close)
    assert len(acks) == 200
    assert len(sync_results) == 50


@pytest.mark.parametrize("in_loop", MODES)
async def test_submit_deadline_fails_the_record_without_a_timer_per_record(in_loop: bool) -> None:
    producer = KafkaProducer(
        "127.0.0.1:1",
        client_id="nobody",
        poll_in_loop=in_loop,
        config={"message.timeout.ms": 60_000},
    ).start()
    try:
        started = time.monotonic()
        futures = [
            producer.submit("leads.order-events.v1", key="k", value=b"v", timeout=0.3)
            for _ in range(20)
        ]
        late = producer.submit("leads.order-events.v1", key="k", value=b"v", timeout=1.0)
        for future in futures:
            with pytest.raises(DeliveryTimeout, match=r"0\.3 s"):
                await future
        assert 0.25 <= time.monotonic() - started < 1.0
        assert not late.done()  # a longer deadline is not cut short by a shorter one
        with pytest.raises(DeliveryTimeout):
            await late
        assert time.monotonic() - started >= 0.95
        assert issubclass(DeliveryTimeout, DeliveryError)
    finally:
        await asyncio.to_thread(producer.close, 0.5)


def test_loop_mode_survives_reports_for_a_loop_that_has_ended(
    kafka_bootstrap: str, topics: Any
) -> None:
    """Records sent from an event loop that ended before their acknowledgements: a later loop
    on the same thread, and close(), serve those reports without breaking (nobody waits)."""
    producer = KafkaProducer(kafka_bootstrap, client_id="test-ended", poll_in_loop=True).start()

    async def fire(n: int) -> None:
        for i in range(n):
            producer.submit(topics.order_events, key="k", value=f"v{i}".encode())

    async def send_and_wait() -> Any:
        await asyncio.sleep(0.5)  # the first loop's reports are in by now
        return await producer.send_raw(topics.order_events, key="k", value=b"second")

    asyncio.run(fire(50))  # closed before any acknowledgement
    delivered = asyncio.run(send_and_wait())
    asyncio.run(fire(50))
    assert delivered.offset >= 0
    assert producer.close(timeout=10) == 0
    assert len(records_in(kafka_bootstrap, topics.order_events)) == 101
