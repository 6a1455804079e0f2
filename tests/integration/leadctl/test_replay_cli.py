"""`leadctl replay` against real Kafka and PostgreSQL: dry-run figures on topics we fill,
the in-place offset rewind of a real consumer group, the replay_runs row, refusal while a
member is active, and following a run to its summary."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from leadctl.main import cli
from services.common.db.models import ReplayRun
from services.common.kafka.partitioning import partition_for
from tests.integration.leadctl.support import (
    ActiveMember,
    committed,
    consume_all,
    produce,
    tenants,
)

pytestmark = pytest.mark.integration

OLD = datetime.now(UTC) - timedelta(hours=3)
NEW = datetime.now(UTC) - timedelta(minutes=20)
SINCE = (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@pytest.fixture
def world(service_env, topics, kafka_bootstrap):  # type: ignore[no-untyped-def]
    """6 tenants; per tenant 5 old (3 h ago) and 7 new (20 min ago) order events, 3 new
    signals; the sequencer's group has read and committed everything."""
    ids = tenants(6)
    old = [str(t) for t in ids for _ in range(5)]
    new = [str(t) for t in ids for _ in range(7)]
    produce(kafka_bootstrap, topics.order_events, old, at_ms=_ms(OLD))
    produce(kafka_bootstrap, topics.order_events, new, at_ms=_ms(NEW))
    signals = [str(t) for t in ids for _ in range(3)]
    produce(kafka_bootstrap, topics.contact_signals, signals, at_ms=_ms(NEW))
    group = f"{service_env['KAFKA_TOPIC_PREFIX']}lead-sequencer"
    sources = [topics.order_events, topics.touchpoint_outcomes, topics.contact_signals]
    consume_all(kafka_bootstrap, group, sources, 30 + 42 + 18)
    return {"tenants": ids, "group": group, "sources": sources}


def _tps(topics_: list[str]) -> list[tuple[str, int]]:
    return [(t, p) for t in topics_ for p in range(4)]


def test_dry_run_prints_the_range_and_changes_nothing(world, kafka_bootstrap) -> None:  # type: ignore[no-untyped-def]
    before = committed(kafka_bootstrap, world["group"], _tps(world["sources"]))
    result = CliRunner().invoke(cli, ["replay", "--since", SINCE])
    assert result.exit_code == 0, result.output
    assert "total: 60 event(s) re-read" in result.output  # 42 new orders + 18 signals
    assert "Dry run: nothing changed" in result.output
    assert committed(kafka_bootstrap, world["group"], _tps(world["sources"])) == before
    full = CliRunner().invoke(cli, ["replay", "--since", "beginning"])
    assert "total: 90 event(s) re-read" in full.output, full.output


def test_dry_run_counts_one_tenants_events(world) -> None:  # type: ignore[no-untyped-def]
    chosen = world["tenants"][0]
    result = CliRunner().invoke(cli, ["replay", "--since", SINCE, "--tenant", str(chosen)])
    assert result.exit_code == 0, result.output
    assert "of which the chosen tenant(s): 10;" in result.output  # 7 orders + 3 signals
    capped = CliRunner().invoke(
        cli, ["replay", "--since", SINCE, "--tenant", str(chosen), "--scan-limit", "1"]
    )
    assert "estimated from a capped scan" in capped.output, capped.output


def test_execute_rewinds_the_group_in_place_and_records_the_run(  # type: ignore[no-untyped-def]
    world, kafka_bootstrap, sa_url
) -> None:
    tps = _tps(world["sources"])
    before = committed(kafka_bootstrap, world["group"], tps)
    result = CliRunner().invoke(cli, ["replay", "--since", SINCE, "--execute", "--no-follow"])
    assert result.exit_code == 0, result.output
    after = committed(kafka_bootstrap, world["group"], tps)
    rewound = {tp: before[tp] - after[tp] for tp in tps if before[tp] != after[tp]}
    assert sum(rewound.values()) == 60
    engine = create_engine(sa_url)
    with engine.connect() as conn:
        run = conn.execute(select(ReplayRun).where(ReplayRun.app_group == world["group"])).one()
    engine.dispose()
    assert run.status == "running"
    assert run.tenants is None
    assert run.end_offsets == {f"{t}:{p}": before[(t, p)] for (t, p) in rewound}
    # a second replay while this one is unfinished is refused
    again = CliRunner().invoke(cli, ["replay", "--since", SINCE, "--execute", "--no-follow"])
    assert again.exit_code != 0
    assert "still in progress" in again.output


def test_tenant_replay_rewinds_only_that_tenants_partitions(  # type: ignore[no-untyped-def]
    world, kafka_bootstrap, sa_url
) -> None:
    chosen = world["tenants"][0]
    tps = _tps(world["sources"])
    before = committed(kafka_bootstrap, world["group"], tps)
    result = CliRunner().invoke(
        cli, ["replay", "--since", "beginning", "--tenant", str(chosen), "--execute", "--no-follow"]
    )
    assert result.exit_code == 0, result.output
    after = committed(kafka_bootstrap, world["group"], tps)
    home = partition_for(chosen, 4)
    for tp in tps:
        if tp[1] == home and before[tp] > 0:
            assert after[tp] == 0, tp
        else:
            assert after[tp] == before[tp], tp
    engine = create_engine(sa_url)
    with engine.connect() as conn:
        run = conn.execute(select(ReplayRun).where(ReplayRun.app_group == world["group"])).one()
    engine.dispose()
    assert run.tenants == [chosen]


def test_execute_refused_while_a_member_is_active(world, kafka_bootstrap) -> None:  # type: ignore[no-untyped-def]
    tps = _tps(world["sources"])
    before = committed(kafka_bootstrap, world["group"], tps)
    with ActiveMember(kafka_bootstrap, world["group"], world["sources"]):
        result = CliRunner().invoke(cli, ["replay", "--since", SINCE, "--execute"])
        assert result.exit_code != 0
        assert "is active" in result.output
        assert "leadctl sequencer" in result.output
        assert committed(kafka_bootstrap, world["group"], tps) == before
    # --wait-for-stop gives up after its timeout while the member stays
    with ActiveMember(kafka_bootstrap, world["group"], world["sources"]):
        waited = CliRunner().invoke(
            cli,
            ["replay", "--since", SINCE, "--execute", "--wait-for-stop", "--wait-timeout", "2"],
        )
        assert waited.exit_code != 0
        assert "still active" in waited.output


def test_follow_shows_progress_and_finishes_the_run(  # type: ignore[no-untyped-def]
    world, kafka_bootstrap, sa_url
) -> None:
    tps = _tps(world["sources"])
    before = committed(kafka_bootstrap, world["group"], tps)
    outcome: dict[str, object] = {}

    def run_cli() -> None:
        outcome["result"] = CliRunner().invoke(
            cli,
            [
                "replay",
                "--since",
                SINCE,
                "--execute",
                "--timeout",
                "60",
                "--outbound-timeout",
                "1",
                "--settle-timeout",
                "1",
            ],
        )

    thread = threading.Thread(target=run_cli)
    thread.start()
    deadline = time.monotonic() + 30
    while committed(kafka_bootstrap, world["group"], tps) == before:
        assert time.monotonic() < deadline, "group never rewound"
        time.sleep(0.3)
    consume_all(kafka_bootstrap, world["group"], world["sources"], 60)  # the "sequencer"
    thread.join(90)
    result = outcome["result"]
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "events re-read:                60" in result.output  # type: ignore[attr-defined]
    engine = create_engine(sa_url)
    with engine.connect() as conn:
        run = conn.execute(select(ReplayRun).where(ReplayRun.app_group == world["group"])).one()
    engine.dispose()
    assert run.status == "done"
    assert run.finished_at is not None
    assert run.stats["summary"]["events_reread"] == 60
    assert run.stats["summary"]["sent"] == 0
    assert uuid.UUID(str(run.id))
