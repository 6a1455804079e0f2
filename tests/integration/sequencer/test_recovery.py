"""A worker killed with SIGKILL and restarted on an EMPTY data dir rebuilds its tables from the
changelog and emits no command twice; two workers split the partitions without duplicates."""

from __future__ import annotations

import asyncio
import collections
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from schemas.base import Channel, command_id_for
from services.common.topics import Topics
from services.sequencer.adapters.replay_pg import records_behind
from tests.conftest import tz_at_local_hour
from tests.integration.sequencer.conftest import (
    Collector,
    high_watermarks,
    order_event,
    produce,
    wait_until,
)

pytestmark = pytest.mark.integration


async def tenants(make_tenant: Any, n: int) -> list[uuid.UUID]:
    zone = tz_at_local_hour(12)
    return [(await make_tenant(timezone=zone))[0].id for _ in range(n)]


def duplicates(collector: Collector) -> list[uuid.UUID]:
    counts = collections.Counter(c.command_id for c in collector.commands())
    return [cid for cid, n in counts.items() if n > 1]


async def test_killed_worker_recovers_tables_from_changelog_and_never_repeats_a_command(
    topics: Topics,
    kafka_bootstrap: str,
    topic_prefix: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
    tmp_path: Path,
) -> None:
    ids = await tenants(make_tenant, 8)
    events = [order_event(t, f"o-{uuid.uuid4().hex[:8]}") for t in ids for _ in range(3)]
    first = start_worker("a", data_dir=tmp_path / "a1")
    produce(kafka_bootstrap, topics.order_events, events)

    await wait_until(commands_of.at_least(len(events)), 90, f"{len(events)} commands", first)
    # A batch's commands are acknowledged before its table writes reach the changelog (a
    # command is never lost): a SIGKILL in between repeats those commands after the restart,
    # and outbound's ledger refuses the second send. What is tested here is the state: once
    # the group committed the batch (its changelog was written first), nothing repeats.
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    ends = high_watermarks(kafka_bootstrap, [topics.order_events], 4)
    group = f"{topic_prefix}lead-sequencer"
    await wait_until(lambda: not records_behind(admin, group, ends), 30, "the commit", first)
    first.kill()  # SIGKILL

    # a new process on an empty data dir: the lead table can only come from the changelog
    second = start_worker("b", data_dir=tmp_path / "a2")
    await wait_until(second.ready, 90, "the restarted worker to recover", second)
    # the same orders again (a webhook retry storm) and a tick period: nothing new is due
    produce(kafka_bootstrap, topics.order_events, events)
    await wait_until(lambda: second.applied() >= len(events), 60, "the duplicates", second)
    await asyncio.sleep(3)
    commands_of.poll(1.0)
    assert duplicates(commands_of) == []
    assert len(commands_of.records) == len(events)
    expected = {command_id_for(e.lead_id, 0, Channel.EMAIL) for e in events if e.lead_id}
    assert {c.command_id for c in commands_of.commands()} == expected
    metrics = second.metrics()
    assert 'result="duplicate"' in metrics, metrics  # state came back from the changelog


async def test_two_workers_split_the_partitions_without_duplicates(
    topics: Topics,
    kafka_bootstrap: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
) -> None:
    ids = await tenants(make_tenant, 24)
    a = start_worker("a")
    b = start_worker("b")
    await wait_until(lambda: a.ready() and b.ready(), 90, "both workers ready", a, b)
    await asyncio.sleep(2)  # let the second join's rebalance settle
    events = [order_event(t, f"o-{uuid.uuid4().hex[:8]}") for t in ids for _ in range(2)]
    produce(kafka_bootstrap, topics.order_events, events)
    await wait_until(commands_of.at_least(len(events)), 90, "every first command", a, b)
    await asyncio.sleep(3)  # ticks on both workers: nothing more may come
    commands_of.poll(1.0)
    assert duplicates(commands_of) == []
    assert len(commands_of.records) == len(events)
    assert a.applied() > 0 and b.applied() > 0  # both workers did a share
    assert a.applied() + b.applied() == len(events)
