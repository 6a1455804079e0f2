"""The sequencer's Kafka outbox on the real broker: `flush()` returns only once every record
is acknowledged, changelog records included, and a refused record is produced again until
the broker takes it (nothing is dropped)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

from schemas import Channel, TouchPointCommand, command_id_for, lead_id_for_order
from services.common.kafka.admin import admin_client
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics
from services.sequencer.adapters.outbox import KafkaOutbox
from tests.integration.sequencer.conftest import Collector
from tests.support.deployment_secrets import LEAD_IDS


def _create(bootstrap: str, name: str, partitions: int, **config: str) -> None:
    admin = admin_client(bootstrap)
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config)])
    for future in futures.values():
        future.result(30)


def _end_offsets(bootstrap: str, topic: str, partitions: int) -> list[int]:
    collector = Collector(bootstrap, topic)
    try:
        return [
            collector.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        ]
    finally:
        collector.close()


def _outbox(bootstrap: str, prefix: str) -> tuple[KafkaProducer, KafkaOutbox]:
    producer = KafkaProducer(bootstrap, client_id="test-outbox", config={"linger.ms": 2.0}).start()
    return producer, KafkaOutbox(producer, Topics(prefix))


def test_flush_returns_once_every_record_and_changelog_is_acknowledged(
    kafka_bootstrap: str, topic_prefix: str
) -> None:
    ticks, changelog = f"{topic_prefix}ticks", f"{topic_prefix}app-leads-changelog"
    _create(kafka_bootstrap, ticks, 3)
    _create(kafka_bootstrap, changelog, 3)
    producer, outbox = _outbox(kafka_bootstrap, topic_prefix)
    try:

        async def batch() -> dict[tuple[str, int], int]:
            for n in range(300):
                outbox.tick(ticks, n % 3, f"tick {n}".encode())
                outbox.changelog(changelog, n % 3, f"k{n}".encode(), f"v{n}".encode())
            await outbox.flush()
            return dict(outbox.take_changelog_offsets())

        offsets = asyncio.run(batch())
        # acknowledged means readable: the end offsets already count every record
        assert _end_offsets(kafka_bootstrap, ticks, 3) == [100, 100, 100]
        assert _end_offsets(kafka_bootstrap, changelog, 3) == [100, 100, 100]
        assert offsets == {(changelog, p): 99 for p in range(3)}
        assert asyncio.run(asyncio.wait_for(outbox.flush(), 1.0)) is None  # nothing pending
    finally:
        producer.close()


def test_a_refused_record_is_produced_again_until_the_broker_takes_it(
    kafka_bootstrap: str, topic_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The topic refuses records over 1 KiB; the flush keeps trying (and says so) until the
    limit is raised, then every record is there, the big one and its changelog neighbours."""
    changelog = f"{topic_prefix}app-leads-changelog"
    _create(kafka_bootstrap, changelog, 1, **{"max.message.bytes": "1024"})
    producer, outbox = _outbox(kafka_bootstrap, topic_prefix)
    caplog.set_level(logging.ERROR, logger="services.common.kafka.partition_buffer")
    try:

        async def scenario() -> None:
            outbox.changelog(changelog, 0, b"small-1", b"x")
            outbox.changelog(changelog, 0, b"big", b"y" * 4000)
            flushing = asyncio.ensure_future(outbox.flush())
            deadline = time.monotonic() + 20
            while "refused a record" not in caplog.text and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert "refused a record" in caplog.text, "the broker's refusal was not seen"
            assert not flushing.done(), "flush returned while a record was refused"
            resource = ConfigResource(
                ConfigResource.Type.TOPIC,
                changelog,
                incremental_configs=[
                    ConfigEntry(
                        "max.message.bytes",
                        "1048588",
                        incremental_operation=AlterConfigOpType.SET,
                    )
                ],
            )
            loop = asyncio.get_running_loop()
            admin = admin_client(kafka_bootstrap)  # alive until its futures are done
            futures: dict[Any, Any] = admin.incremental_alter_configs([resource])
            for future in futures.values():
                await loop.run_in_executor(None, future.result, 30)
            await asyncio.wait_for(flushing, 30)

        asyncio.run(scenario())
        collector = Collector(kafka_bootstrap, changelog)
        try:
            deadline = time.monotonic() + 15
            while {len(r) for r in collector.records} != {1, 4000} and time.monotonic() < deadline:
                collector.poll()
            keys = sorted(collector.records, key=len)
        finally:
            collector.close()
        # the small one may be there twice (re-produced with its refused neighbour): a
        # changelog is compacted by key and replayed idempotently, a loss is what matters
        assert {len(k) for k in keys} == {1, 4000}, "a refused record was dropped"
    finally:
        producer.close()


def _command(tenant: uuid.UUID, n: int) -> TouchPointCommand:
    lead = lead_id_for_order(LEAD_IDS, tenant, f"o{n}")
    now = datetime.now(UTC)
    return TouchPointCommand(
        command_id=command_id_for(lead, 0, Channel.EMAIL),
        tenant_id=tenant,
        lead_id=lead,
        step_index=0,
        channel=Channel.EMAIL,
        template="welcome",
        due_at=now,
        issued_at=now,
        recipient={"email": "jane@example.com"},
    )


def test_commands_land_where_librdkafka_puts_their_tenant_key(
    kafka_bootstrap: str, topics: Any
) -> None:
    """The outbox picks the partition of buffered commands itself (murmur2 of the tenant key,
    one delivery report per partition); it must be the partition every other producer of
    the system uses for that tenant."""
    tenants = [uuid.uuid4() for _ in range(40)]
    producer, outbox = _outbox(kafka_bootstrap, topics.prefix)
    try:

        async def batch() -> None:
            for n, tenant in enumerate(tenants * 3):
                outbox.command(_command(tenant, n))
            await outbox.flush()

        asyncio.run(batch())
        expected = {
            str(t): producer.send_sync(topics.lead_changes, key=str(t), value=b"probe").partition
            for t in tenants
        }
    finally:
        producer.close()
    collector = Collector(kafka_bootstrap, topics.touchpoint_commands)
    try:
        deadline = time.monotonic() + 20
        while len(collector.placed) < 120 and time.monotonic() < deadline:
            collector.poll()
        placed = list(collector.placed)
    finally:
        collector.close()
    assert len(placed) == 120
    assert {(key, partition) for key, partition in placed} == set(expected.items())


def test_flush_waits_while_partition_metadata_cannot_be_read(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No partition metadata for the commands topic (no broker answers): the batch waits and
    says so; nothing is raised (which would dead-letter or lose the batch) or dropped."""
    producer = KafkaProducer("127.0.0.1:1", client_id="nobody").start()
    outbox = KafkaOutbox(producer, Topics("nowhere."))
    outbox.metadata_timeout = 0.5
    caplog.set_level(logging.ERROR, logger="services.common.kafka.partition_buffer")
    try:

        async def scenario() -> None:
            outbox.command(_command(uuid.uuid4(), 1))
            flushing = asyncio.ensure_future(outbox.flush())
            deadline = time.monotonic() + 15
            while caplog.text.count("no partition metadata") < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert caplog.text.count("no partition metadata") >= 2, "not retried"
            assert not flushing.done(), "flush gave up (or raised) without metadata"
            flushing.cancel()

        asyncio.run(scenario())
    finally:
        producer.close(timeout=0.5)


def test_a_discarded_batch_produces_nothing(kafka_bootstrap: str, topics: Any) -> None:
    """A batch that failed before its flush: what it buffered never reaches Kafka (the
    records are processed again), and the next batch's flush sends only its own."""
    producer, outbox = _outbox(kafka_bootstrap, topics.prefix)
    tenant = uuid.uuid4()
    try:

        async def batches() -> None:
            outbox.command(_command(tenant, 1))
            outbox.changelog(topics.lead_changes, 0, b"k", b"stale")
            outbox.discard()
            outbox.command(_command(tenant, 2))
            await outbox.flush()

        asyncio.run(batches())
    finally:
        producer.close()
    assert sum(_end_offsets(kafka_bootstrap, topics.touchpoint_commands, 4)) == 1
    assert sum(_end_offsets(kafka_bootstrap, topics.lead_changes, 4)) == 0
