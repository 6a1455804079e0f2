"""The replay summary read back from real topics: leads changed, record-only commands
re-emitted, and outbound's answers to them (skipped as already done, recorded, sent), for all
tenants or only the replayed ones; records older than the run are not counted."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from leadctl.replay.kafka import KafkaView
from leadctl.replay.summary import summarise
from tests.integration.leadctl.support import consume_all

pytestmark = pytest.mark.integration


def _send(bootstrap: str, topic: str, docs: list[dict[str, object]], at: datetime) -> None:
    from confluent_kafka import Producer

    from services.common.kafka.config import producer_config

    producer = Producer(producer_config(bootstrap, client_id="summary-test"))
    for doc in docs:
        producer.produce(
            topic,
            key=str(doc["tenant_id"]).encode(),
            value=json.dumps(doc).encode(),
            timestamp=int(at.timestamp() * 1000),
        )
    assert producer.flush(30) == 0


def test_summary_counts(topics, kafka_bootstrap) -> None:  # type: ignore[no-untyped-def]
    mine, other = uuid.uuid4(), uuid.uuid4()
    lead_a, lead_b, lead_c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    started = datetime.now(UTC) - timedelta(minutes=5)
    old = started - timedelta(hours=1)
    c = [str(uuid.uuid4()) for _ in range(5)]
    _send(
        kafka_bootstrap,
        topics.lead_changes,
        [{"tenant_id": str(mine), "lead_id": str(lead_a)}],
        old,  # before the run: not counted
    )
    _send(
        kafka_bootstrap,
        topics.lead_changes,
        [
            {"tenant_id": str(mine), "lead_id": str(lead_a)},
            {"tenant_id": str(mine), "lead_id": str(lead_a)},
            {"tenant_id": str(mine), "lead_id": str(lead_b)},
            {"tenant_id": str(other), "lead_id": str(lead_c)},
        ],
        started + timedelta(seconds=5),
    )
    commands = [
        {"tenant_id": str(mine), "command_id": c[0], "record_only": True},
        {"tenant_id": str(mine), "command_id": c[1], "record_only": True},
        {"tenant_id": str(mine), "command_id": c[2], "record_only": True},
        {"tenant_id": str(mine), "command_id": c[3], "record_only": False},  # live traffic
        {"tenant_id": str(other), "command_id": c[4], "record_only": True},
    ]
    _send(kafka_bootstrap, topics.touchpoint_commands, commands, started + timedelta(seconds=6))
    outcomes = [
        {"tenant_id": str(mine), "command_id": c[0], "status": "sent", "duplicate": True},
        {"tenant_id": str(mine), "command_id": c[1], "status": "recorded", "duplicate": False},
        {"tenant_id": str(mine), "command_id": c[3], "status": "sent", "duplicate": False},
        {"tenant_id": str(other), "command_id": c[4], "status": "skipped", "duplicate": True},
    ]
    _send(kafka_bootstrap, topics.touchpoint_outcomes, outcomes, started + timedelta(seconds=7))
    group = f"outbound-{uuid.uuid4().hex[:6]}"
    consume_all(kafka_bootstrap, group, [topics.touchpoint_commands], 5)

    view = KafkaView(kafka_bootstrap)
    try:
        one = summarise(
            view,
            topics,
            started=started,
            tenants=(mine,),
            outbound_group=group,
            outbound_timeout=5,
        )
        every = summarise(
            view, topics, started=started, tenants=None, outbound_group=group, outbound_timeout=5
        )
    finally:
        view.close()
    assert (one.lead_changes, one.leads_changed) == (3, 2)
    assert one.commands_reemitted == 3
    assert (one.outcomes, one.skipped_already_done, one.recorded, one.sent) == (2, 1, 1, 0)
    assert one.outbound_caught_up
    assert (every.leads_changed, every.commands_reemitted) == (3, 4)
    assert (every.skipped_already_done, every.recorded, every.sent) == (2, 1, 0)
