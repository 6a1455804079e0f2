"""The replay plan (pure): what is re-read per partition, never moving a group forward, never
marking unprocessed records as replayed, and per-tenant partition selection."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import click
import pytest
from aiokafka.partitioner import DefaultPartitioner

from leadctl.replay.plan import build_plan
from leadctl.times import EPOCH, parse_time
from services.common.domain.replay import parse_tp_key, tp_key
from services.common.kafka.partitioning import partition_for

T = "p.leads.order-events.v1"


def test_range_is_since_to_committed() -> None:
    plan = build_plan(
        "g",
        watermarks={(T, 0): (0, 100), (T, 1): (0, 50)},
        committed={(T, 0): 100, (T, 1): 50},
        since={(T, 0): 60, (T, 1): None},  # partition 1: nothing newer than since
    )
    assert plan.new_offsets() == {(T, 0): 60}
    assert plan.end_offsets() == {(T, 0): 100}
    assert plan.total == 40
    assert plan.partitions[1].rereads == 0


def test_a_lagging_group_is_never_moved_forward_nor_its_new_records_replayed() -> None:
    plan = build_plan(
        "g",
        watermarks={(T, 0): (0, 100)},
        committed={(T, 0): 70},
        since={(T, 0): 80},
    )
    # since lies beyond what the group processed: nothing to replay, offsets stay
    assert plan.rewound == []
    lag = build_plan("g", watermarks={(T, 0): (0, 100)}, committed={(T, 0): 70}, since={(T, 0): 10})
    assert lag.new_offsets() == {(T, 0): 10}
    assert lag.end_offsets() == {(T, 0): 70}  # 70..100 were never processed: stay normal
    assert "lags" in lag.partitions[0].note


def test_until_bounds_the_end_and_no_committed_offset_means_nothing() -> None:
    plan = build_plan(
        "g",
        watermarks={(T, 0): (0, 100), (T, 1): (0, 9)},
        committed={(T, 0): 100, (T, 1): None},
        since={(T, 0): 10, (T, 1): 0},
        until={(T, 0): 30, (T, 1): None},
    )
    assert plan.end_offsets() == {(T, 0): 30}
    assert plan.total == 20
    assert not plan.partitions[1].selected


def test_tenant_replay_selects_only_the_partitions_holding_it() -> None:
    tenant = uuid.uuid4()
    n = 12
    home = partition_for(tenant, n)
    marks = {(T, p): (0, 10) for p in range(n)}
    plan = build_plan(
        "g",
        watermarks=marks,
        committed={tp: 10 for tp in marks},
        since={tp: 0 for tp in marks},
        tenants=[tenant],
    )
    assert list(plan.new_offsets()) == [(T, home)]
    assert plan.total == 10


def test_partition_for_matches_the_java_murmur2_partitioner() -> None:
    parts = list(range(12))
    for _ in range(50):
        tenant = uuid.uuid4()
        assert partition_for(tenant, 12) == DefaultPartitioner()(str(tenant).encode(), parts, parts)


def test_tp_keys_round_trip() -> None:
    assert parse_tp_key(tp_key(("a.b:c", 3))) == ("a.b:c", 3)


def test_parse_time_forms() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_time("beginning", now=now) == EPOCH
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("7d", now=now) == now - timedelta(days=7)
    assert parse_time("2026-04-01T00:00:00", now=now) == datetime(2026, 4, 1, tzinfo=UTC)
    assert parse_time("2026-04-01T00:00:00Z", now=now) == datetime(2026, 4, 1, tzinfo=UTC)
    with pytest.raises(click.BadParameter):
        parse_time("yesterday-ish", now=now)


def test_parse_time_takes_the_forms_leads_show_took() -> None:
    now = datetime(2026, 5, 1, 12, tzinfo=UTC)
    assert parse_time("30d", now=now) == now - timedelta(days=30)
    assert parse_time(" 12 H ", now=now) == now - timedelta(hours=12)
    assert parse_time("2024-05-01T00:00", now=now) == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_time("2024-05-01T02:00+02:00", now=now) == datetime(2024, 5, 1, tzinfo=UTC)
