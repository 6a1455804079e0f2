"""The sequencer's side of the replay agreement, with a `replay_runs` row this test inserts the
way `leadctl replay` does: group rewound while the worker is stopped, then a 'pending' row.
Replayed records of the chosen tenant re-emit their commands as record_only, the other
tenant's are skipped, the run ends 'done' with stats, and the `leads` table is untouched
(nothing changed logically)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.integration.sequencer.conftest import (
    Collector,
    high_watermarks,
    order_event,
    produce,
    wait_until,
)

pytestmark = pytest.mark.integration


def rows(db_url: str, tenants: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT * FROM leads WHERE tenant_id = ANY(%s) ORDER BY lead_id", (tenants,)
        ).fetchall()


def replay_run(db_url: str, run_id: uuid.UUID) -> tuple[Any, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT status, stats, finished_at FROM replay_runs WHERE id = %s", (run_id,)
        ).fetchone()


def request_replay(
    bootstrap: str, db_url: str, topics: Topics, group: str, tenants: list[uuid.UUID]
) -> tuple[dict[str, int], uuid.UUID]:
    """What `leadctl replay --execute` does, the worker stopped: high watermarks, the group's
    order-events offsets rewound to 0, a pending `replay_runs` row."""
    sources = [topics.order_events, topics.touchpoint_outcomes, topics.contact_signals]
    ends = high_watermarks(bootstrap, sources, 4)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    rewind = [TopicPartition(topics.order_events, p, 0) for p in range(4)]
    for future in admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, rewind)]
    ).values():
        future.result(timeout=30)
    run_id = uuid.uuid4()
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO replay_runs (id, app_group, tenants, since, end_offsets, status)"
            " VALUES (%s, %s, %s, %s, %s, 'pending')",
            (run_id, group, tenants, datetime.now(UTC) - timedelta(days=1), json.dumps(ends)),
        )
    return ends, run_id


async def replay_done(db_url: str, run_id: uuid.UUID, replayer: Any) -> None:
    """Wait for the run to end 'done'; a timeout shows its row (stats so far) with the logs."""
    try:
        await wait_until(
            lambda: (replay_run(db_url, run_id) or ("",))[0] == "done", 90, "replay done", replayer
        )
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}\nreplay_runs row: {replay_run(db_url, run_id)}")


async def test_replay_reemits_record_only_for_its_tenants_and_leaves_leads_identical(
    topics: Topics,
    kafka_bootstrap: str,
    db_url: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
    topic_prefix: str,
) -> None:
    zone = tz_at_local_hour(12)
    a = (await make_tenant(timezone=zone))[0].id
    b = (await make_tenant(timezone=zone))[0].id
    events = [order_event(a, f"o-{uuid.uuid4().hex[:8]}"), order_event(b, "o-b")]
    worker = start_worker("live")
    produce(kafka_bootstrap, topics.order_events, events)

    await wait_until(commands_of.at_least(2), 90, "the live commands", worker)
    await wait_until(lambda: len(rows(db_url, [a, b])) == 2, 30, "both leads rows", worker)
    before = rows(db_url, [a, b])
    worker.stop()  # SIGTERM: offsets committed, the group is empty

    group = f"{topic_prefix}lead-sequencer"
    ends, run_id = request_replay(kafka_bootstrap, db_url, topics, group, [a])
    assert sum(ends.values()) == 2

    replayer = start_worker("replay")
    await replay_done(db_url, run_id, replayer)
    commands_of.poll(2.0)
    commands = commands_of.commands()
    live, replayed = commands[:2], commands[2:]
    assert all(not c.record_only for c in live)
    assert [(c.tenant_id, c.command_id, c.record_only) for c in replayed] == [
        (a, next(c.command_id for c in live if c.tenant_id == a), True)
    ]
    run = replay_run(db_url, run_id)
    assert run is not None and run[2] is not None
    stats = run[1]
    # Delivery is at least once: a worker that starts may read a record twice (Faust seeks
    # back to the committed offsets once its tables are recovered, records it already read
    # included). Each record is read, and a second read changes nothing: one command
    # re-emitted, one lead reset, no lead changed.
    assert stats["events_reread"] >= 1 and stats["events_skipped"] >= 1, stats
    assert stats["commands_reemitted"] == 1 and stats["leads_reset"] == 1, stats
    assert stats["leads_changed"] == 0, stats
    await wait_until(lambda: replayer.applied() >= 1, 10, "metrics", replayer)
    assert rows(db_url, [a, b]) == before  # byte for byte: no version/updated_at bump


async def test_a_replay_judges_each_record_when_it_was_first_read_not_at_the_wall_clock(
    topics: Topics,
    kafka_bootstrap: str,
    db_url: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
    topic_prefix: str,
) -> None:
    """The plan sends nothing over `max_late` (1 min here) overdue. The order's first step is
    ~50 s overdue when it is first read: sent. The replay reads it again at ~75 s: judged at
    the wall clock it would be 'too late', the lead would go back to no step sent; judged at
    its record time it re-emits the same command record-only and the lead is unchanged."""
    tenant = (await make_tenant(timezone=tz_at_local_hour(12)))[0].id
    plan = {
        "steps": [{"after_minutes": 0, "channel": "email", "template": "nurture_email_welcome"}],
        "lost_after_minutes": 20160,
        "max_late_minutes": 1,
    }
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "UPDATE tenants SET nurture_plan = %s WHERE id = %s", (json.dumps(plan), tenant)
        )
    worker = start_worker("live")
    await wait_until(worker.ready, 90, "the live worker", worker)  # read at once, not late
    created = datetime.now(UTC) - timedelta(seconds=50)
    produce(kafka_bootstrap, topics.order_events, [order_event(tenant, "o-1", created_at=created)])
    await wait_until(commands_of.at_least(1), 90, "the live command", worker)
    await wait_until(lambda: len(rows(db_url, [tenant])) == 1, 30, "the lead's row", worker)
    before = rows(db_url, [tenant])
    worker.stop()
    # the step is now more than max_late overdue by the wall clock
    await asyncio.sleep(
        max(0.0, (created + timedelta(seconds=75) - datetime.now(UTC)).total_seconds())
    )

    _, run_id = request_replay(
        kafka_bootstrap, db_url, topics, f"{topic_prefix}lead-sequencer", [tenant]
    )
    replayer = start_worker("replay")
    await replay_done(db_url, run_id, replayer)
    commands_of.poll(2.0)
    live, *replayed = commands_of.commands()
    assert [(c.command_id, c.record_only) for c in replayed] == [(live.command_id, True)]
    assert rows(db_url, [tenant]) == before


def test_the_done_check_reads_the_groups_offsets_without_joining_it(
    topics: Topics, kafka_bootstrap: str
) -> None:
    """`records_behind` asks the broker with the admin API: the records left on each
    partition until the group's committed offset reaches its end offset, nothing once all
    did; a broker that does not answer raises within its timeout instead of holding the
    worker's thread (a group consumer's close() may wait on an unavailable coordinator without
    bound)."""
    import time

    from confluent_kafka import Consumer, KafkaException

    from services.sequencer.adapters.replay_pg import records_behind

    topic = topics.order_events
    group = f"done-check-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ends = {f"{topic}:0": 3, f"{topic}:1": 0, f"{topic}:2": 5}
    # the group has committed nothing; a partition without records is never behind
    assert records_behind(admin, group, ends) == {f"{topic}:0": 3, f"{topic}:2": 5}
    assert records_behind(admin, group, {f"{topic}:1": 0}) == {}

    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, 0, 3), TopicPartition(topic, 2, 4)], asynchronous=False
        )
        assert records_behind(admin, group, ends) == {f"{topic}:2": 1}
        consumer.commit(offsets=[TopicPartition(topic, 2, 5)], asynchronous=False)
        assert records_behind(admin, group, ends) == {}
    finally:
        consumer.close()

    down = AdminClient({"bootstrap.servers": "127.0.0.1:1", "log_level": 0})
    started = time.monotonic()
    with pytest.raises(KafkaException):
        records_behind(down, group, ends, timeout=2.0)
    assert time.monotonic() - started < 10.0
