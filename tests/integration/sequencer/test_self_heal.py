"""Local state is a cache of the changelogs: Kafka's data is reset (every topic of this
environment deleted and recreated, the sequencer's changelogs with them) while the worker's
SEQUENCER_DATA_DIR stays. The restarted worker discards the partitions whose RocksDB is ahead
of their changelog, says so per partition, comes up and processes, treating the orders it
sees again as new leads (nothing of the discarded state survives). Faust alone stopped the
worker with ConsistencyError until somebody deleted the directory by hand."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from services.common.kafka.admin import ensure_topics
from services.common.topics import Topics
from services.sequencer.adapters.replay_pg import records_behind
from tests.conftest import delete_topics_where, tz_at_local_hour
from tests.integration.sequencer.conftest import (
    Collector,
    high_watermarks,
    order_event,
    produce,
    wait_until,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4


def reset_kafka(bootstrap: str, prefix: str) -> None:
    """Every topic under `prefix` deleted (Faust's changelogs and ticks included), gone from
    the metadata, then the project's topics created again, empty."""
    delete_topics_where(bootstrap, lambda name: not name.startswith(prefix))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + 60
    while any(n.startswith(prefix) for n in admin.list_topics(timeout=10).topics):
        assert time.monotonic() < deadline, "topics not deleted within 60 s"
        time.sleep(0.5)
    ensure_topics(bootstrap, partitions=PARTITIONS, names=Topics(prefix).with_dlqs())


async def test_a_worker_whose_local_state_is_ahead_of_a_reset_kafka_rebuilds_and_processes(
    topics: Topics,
    kafka_bootstrap: str,
    topic_prefix: str,
    make_tenant: Any,
    start_worker: Any,
    tmp_path: Path,
) -> None:
    zone = tz_at_local_hour(12)
    tenants = [(await make_tenant(timezone=zone))[0].id for _ in range(8)]
    # several orders per tenant: every changelog partition holds a few records
    events = [order_event(t, f"o-{uuid.uuid4().hex[:8]}") for t in tenants for _ in range(3)]
    data_dir = tmp_path / "kept-data"
    first = start_worker("a", data_dir=data_dir)
    produce(kafka_bootstrap, topics.order_events, events)
    before = Collector(kafka_bootstrap, topics.touchpoint_commands)
    try:
        await wait_until(before.at_least(len(events)), 90, "the first commands", first)
    finally:
        before.close()
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ends = high_watermarks(kafka_bootstrap, [topics.order_events], PARTITIONS)
    group = f"{topic_prefix}lead-sequencer"
    await wait_until(lambda: not records_behind(admin, group, ends), 30, "the commit", first)
    first.stop()  # a clean stop: RocksDB keeps its changelog offsets
    assert first.proc.returncode == 0, first.tail()
    assert any(data_dir.rglob("*.db")), "the worker left no local state to be ahead"

    reset_kafka(kafka_bootstrap, topic_prefix)

    second = start_worker("b", data_dir=data_dir)
    await wait_until(second.ready, 120, "the worker on the kept data dir", second)
    discarded = re.findall(r"table (\w+) partition (\d+): local state holds", second.tail(20000))
    assert discarded, second.tail()
    assert {t for t, _ in discarded} == {"leads", "customers"}

    # it processes, from a clean slate: the same orders are new leads again (state kept from
    # before the reset would have taken them for duplicates and emitted nothing)
    after = Collector(kafka_bootstrap, topics.touchpoint_commands)
    try:
        produce(kafka_bootstrap, topics.order_events, events)
        await wait_until(after.at_least(len(events)), 90, "commands after the reset", second)
        assert {c.lead_id for c in after.commands()} == {e.lead_id for e in events}
    finally:
        after.close()
    assert second.proc.poll() is None, second.tail()
    assert "ConsistencyError" not in second.tail(20000)
