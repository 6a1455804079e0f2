"""Consumer lag and DLQ counts read from the real broker."""

from __future__ import annotations

import uuid

import pytest

from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.lag import consumer_lag, dlq_counts
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics

pytestmark = pytest.mark.integration


def test_lag_counts_what_the_group_has_not_processed(kafka_bootstrap: str, topics: Topics) -> None:
    tenant = str(uuid.uuid4())
    producer = KafkaProducer(kafka_bootstrap, client_id="lag").start()
    for i in range(5):
        producer.send_sync(topics.touchpoint_commands, key=tenant, value=b"c%d" % i)
    for _ in range(2):
        producer.send_sync(topics.order_events + ".dlq", key=tenant, value=b"bad")
    producer.close()
    group = f"g-{uuid.uuid4()}"
    consumer = AtLeastOnceConsumer(
        kafka_bootstrap, group_id=group, topics=[topics.touchpoint_commands], client_id="lag"
    )
    processed = 0
    try:
        for _ in range(40):
            for msg in consumer.poll_batch(1, timeout=0.5):
                if processed < 2:
                    consumer.store(msg)
                    processed += 1
            if processed == 2:
                break
        consumer.commit()
    finally:
        consumer.close()
    rows = consumer_lag(kafka_bootstrap, topics, groups=[group])
    assert sum(r.lag for r in rows) == 3
    assert {r.topic for r in rows} == {topics.touchpoint_commands}
    counts = dlq_counts(kafka_bootstrap, topics)
    assert counts[topics.order_events + ".dlq"] == 2
    assert counts[topics.touchpoint_commands + ".dlq"] == 0
