"""Benchmark of `leadctl replay`: 1,000,000 order events re-read by ONE real `leadctl
sequencer` process after `leadctl replay --since beginning --execute`, against a baseline
measured in the same run on the same topic: a raw confluent-kafka consumer that only reads
the records.

Target: the replay of 1M events takes <= 5 minutes on this machine.

    uv run python bench/replay/run.py            # full run: 1,000,000 events
    uv run python bench/replay/run.py --quick    # smoke run: 50,000 events

The topic holds 200,000 orders of 200 tenants, 5 versions each (estimate, authorized, repair
order, invoice, paid), keyed by tenant. The sequencer's group is first marked as having read
everything (its offsets set to the end: the state a production group is in), then the real
CLI rewinds it to the beginning and records the replay_runs row; the timed part is from the
sequencer's process start until its group has committed every end offset (so it includes
the worker's start and its table recovery), with the projection off (`--no-projection`).
By default the sequencer starts with empty tables: every lead is rebuilt by the replay (the
"rebuild state" case); `--warm` first lets it process everything (tables built, its group at
the end), stops it, and then replays over the existing state. Writes
.local/bench/replay.json. Own database lo_bench_replay and a fresh topic prefix; the topics
are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402

from bench.common import (  # noqa: E402
    KAFKA,
    delete_topics_with_prefix,
    free_port,
    lead_ids,
    migrated_database,
)
from leadctl.replay.kafka import KafkaView  # noqa: E402
from schemas.base import lead_id_for_order  # noqa: E402
from schemas.events import (  # noqa: E402
    Customer,
    Operation,
    OrderEvent,
    OrderSnapshot,
    OrderSource,
)
from services.common.kafka.admin import ensure_topics  # noqa: E402
from services.common.kafka.config import producer_config  # noqa: E402
from services.common.topics import Topics  # noqa: E402

LEAD_IDS = lead_ids()

TARGET_SECONDS_PER_MILLION = 300.0
BENCH_DB = "lo_bench_replay"
STEPS = [
    {},
    {"authorized": True},
    {"authorized": True, "status": "RepairOrder"},
    {"authorized": True, "status": "Invoice", "invoiced": True},
    {"authorized": True, "status": "Invoice", "invoiced": True, "paid": True},
]


def produce(topic: str, events: int, tenants: int) -> float:
    """`events` order events (5 versions per order), tenant-keyed; returns seconds."""
    ids = [uuid.uuid4() for _ in range(tenants)]
    base = datetime.now(UTC) - timedelta(days=2)
    producer = Producer(
        producer_config(KAFKA, client_id="bench-replay", linger_ms=50)
        | {"batch.size": 1_000_000, "queue.buffering.max.messages": 1_000_000}
    )
    started = time.perf_counter()
    for i in range(events):
        order, version = divmod(i, len(STEPS))
        tenant = ids[order % tenants]
        oid = f"bench-{order}"
        at = base + timedelta(milliseconds=i)
        event = OrderEvent(
            event_id=f"shopmonkey:order:{oid}:{version + 1}",
            tenant_id=tenant,
            lead_id=lead_id_for_order(LEAD_IDS, tenant, oid),
            source=OrderSource.WEBHOOK,
            entity="order",
            operation=Operation.INSERT if version == 0 else Operation.UPDATE,
            occurred_at=at,
            ingested_at=at,
            order=OrderSnapshot(
                order_id=oid,
                number=str(1000 + order),
                version=version + 1,
                created_at=base + timedelta(milliseconds=order * len(STEPS)),
                total_cents=12_345,
                vehicle="2019 Honda Civic",
                **STEPS[version],  # type: ignore[arg-type]
            ),
            customer=Customer(
                customer_id=f"c-{order}",
                first_name="Sam",
                last_name="Lee",
                email=f"c{order}@example.net",
                phone="+13125550150",
            ),
        )
        while True:
            try:
                producer.produce(topic, key=str(tenant).encode(), value=event.to_bytes())
                break
            except BufferError:
                producer.poll(0.05)
        if i % 5000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    return time.perf_counter() - started


def raw_consume(topic: str, events: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 50 * 1024 * 1024,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started = time.perf_counter()
    while seen < events:
        for msg in consumer.consume(num_messages=10_000, timeout=1.0):
            if msg.error() is None:
                seen += 1
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def mark_read(view: KafkaView, group: str, topics: list[str]) -> dict[tuple[str, int], int]:
    tps = view.partitions(topics)
    ends = {tp: high for tp, (_, high) in view.watermarks(tps).items()}
    view.alter(group, ends)
    return ends


def leadctl(env: dict[str, str], *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "leadctl.main", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_done(db_url: str, group: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(db_url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT status FROM replay_runs WHERE app_group = %s", (group,)
            ).fetchone()
            if row and row[0] == "done":
                return
            time.sleep(0.5)


def process_first(
    env: dict[str, str], view: KafkaView, group: str, topics: list[str], tmp: Path, limit: float
) -> float:
    """--warm: the sequencer reads everything once (building its tables), then stops."""
    tps = view.partitions(topics)
    ends = {tp: high for tp, (_, high) in view.watermarks(tps).items() if high > 0}
    log = tmp / "sequencer-first.log"
    started = time.perf_counter()
    worker = leadctl(env, "sequencer", "--no-projection", log=log)
    try:
        while True:
            done = view.committed(group, list(ends))
            if all((done.get(tp) or 0) >= end for tp, end in ends.items()):
                return time.perf_counter() - started
            if worker.poll() is not None or time.perf_counter() - started > limit:
                raise SystemExit(f"first pass failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
    finally:
        worker.terminate()
        worker.wait(60)
        while view.group_state(group).active:
            time.sleep(0.5)


def replay_time(
    env: dict[str, str], view: KafkaView, group: str, ends: dict[Any, int], tmp: Path, limit: float
) -> tuple[float, float, float]:
    """(CLI seconds, sequencer seconds to the end offsets, seconds to its first commit)."""
    log = tmp / "replay-cli.log"
    started = time.perf_counter()
    cli = leadctl(env, "replay", "--since", "beginning", "--execute", "--no-follow", log=log)
    if cli.wait(300) != 0:
        raise SystemExit(f"leadctl replay failed:\n{log.read_text()[-3000:]}")
    cli_seconds = time.perf_counter() - started
    print(log.read_text().rstrip()[-1500:])
    wlog = tmp / "sequencer.log"
    started = time.perf_counter()
    worker = leadctl(env, "sequencer", "--no-projection", log=wlog)
    first = 0.0
    try:
        while True:
            done = view.committed(group, list(ends))
            progress = sum(min(done.get(tp) or 0, end) for tp, end in ends.items())
            elapsed = time.perf_counter() - started
            if progress and not first:
                first = elapsed
            if progress >= sum(ends.values()):
                wait_done(env["DATABASE_URL"], group, 10.0)  # the worker closes the run
                return cli_seconds, elapsed, first
            if worker.poll() is not None or elapsed > limit:
                raise SystemExit(
                    f"sequencer {'exited' if worker.poll() is not None else 'too slow'} at "
                    f"{progress}/{sum(ends.values())}:\n{wlog.read_text()[-3000:]}"
                )
            time.sleep(0.5)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50,000 events (smoke run)")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--tenants", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=12)
    parser.add_argument("--keep", action="store_true", help="Keep the topics afterwards.")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="Let the sequencer process everything first, then replay (state exists).",
    )
    args = parser.parse_args()
    events = args.events or (50_000 if args.quick else 1_000_000)
    target = TARGET_SECONDS_PER_MILLION * events / 1_000_000
    db_url = migrated_database(BENCH_DB)
    prefix = f"benchrp{uuid.uuid4().hex[:8]}."
    topics = Topics(prefix)
    ensure_topics(KAFKA, partitions=args.partitions, names=topics.with_dlqs())
    group = f"{prefix}lead-sequencer"
    env = dict(os.environ) | {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": str(args.partitions),
        "DATABASE_URL": db_url,
        "SEQUENCER_PORT": str(free_port()),
        "SEQUENCER_HOST": "127.0.0.1",
        "REPLAY_POLL_SECONDS": "2",
        "LOG_LEVEL": "warning",
    }
    view = KafkaView(KAFKA)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmpdir:
            tmp = Path(tmpdir)
            env["SEQUENCER_DATA_DIR"] = str(tmp / "data")
            print(f"producing {events:,} order events to {topics.order_events} …", flush=True)
            produce_s = produce(topics.order_events, events, args.tenants)
            print(f"  {produce_s:.1f} s", flush=True)
            raw_s = raw_consume(topics.order_events, events)
            print(f"raw consumer: {raw_s:.2f} s", flush=True)
            sources = [topics.order_events, topics.touchpoint_outcomes, topics.contact_signals]
            first_pass = None
            if args.warm:
                first_pass = process_first(env, view, group, sources, tmp, limit=target * 4)
                print(f"first pass (tables built): {first_pass:.1f} s", flush=True)
                tps = view.partitions(sources)
                ends = {tp: h for tp, (_, h) in view.watermarks(tps).items() if h > 0}
            else:
                ends = {tp: e for tp, e in mark_read(view, group, sources).items() if e > 0}
            cli_s, replay_s, first_s = replay_time(env, view, group, ends, tmp, limit=target * 4)
            commands = sum(
                high
                for _, high in view.watermarks(
                    view.partitions([topics.touchpoint_commands])
                ).values()
            )
    finally:
        view.close()
        if not args.keep:
            delete_topics_with_prefix(KAFKA, prefix)
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT status, stats FROM replay_runs WHERE app_group = %s", (group,)
        ).fetchone()
    ratio = replay_s / raw_s if raw_s else float("inf")
    result = {
        "benchmark": "replay",
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "events": events,
        "tenants": args.tenants,
        "partitions": args.partitions,
        "mode": "warm (tables built by a first pass)" if args.warm else "cold (empty tables)",
        "first_pass_seconds": round(first_pass, 2) if first_pass is not None else None,
        "produce_seconds": round(produce_s, 2),
        "baseline_raw_consumer_seconds": round(raw_s, 3),
        "baseline_raw_consumer_events_per_second": round(events / raw_s),
        "replay_cli_seconds": round(cli_s, 2),
        "replay_seconds": round(replay_s, 2),
        "replay_first_commit_seconds": round(first_s, 2),
        "replay_events_per_second": round(events / replay_s),
        "replay_steady_events_per_second": round(events / max(replay_s - first_s, 1e-9)),
        "ratio_replay_to_raw": round(ratio, 1),
        "record_only_commands_emitted": commands,
        "replay_run": {"status": row[0], "stats": row[1]} if row else None,
        "target_seconds": target,
        "target_met": replay_s <= target,
    }
    print()
    print(f"{'measure':40} {'value':>14}")
    print(f"{'events':40} {events:>14,}  ({result['mode']})")
    print(f"{'raw consumer (baseline), s':40} {raw_s:>14.2f}")
    print(f"{'raw consumer, events/s':40} {events / raw_s:>14,.0f}")
    print(f"{'leadctl replay (plan + rewind), s':40} {cli_s:>14.2f}")
    print(f"{'sequencer replay to end offsets, s':40} {replay_s:>14.2f}")
    print(f"{'sequencer replay, events/s':40} {events / replay_s:>14,.0f}")
    steady = events / max(replay_s - first_s, 1e-9)
    print(f"{'  after its first commit (start-up), s':40} {first_s:>14.2f}")
    print(f"{'  steady rate after start-up, events/s':40} {steady:>14,.0f}")
    print(f"{'ratio replay / raw consumer':40} {ratio:>14.1f}x")
    verdict = "MET" if replay_s <= target else "MISSED"
    print(f"{'target (<= 5 min per 1M), s':40} {target:>14.0f}  {verdict}")
    if events < 1_000_000:
        print("  (target scaled to the event count; the fixed start-up weighs on a short run)")
    out = ROOT / ".local" / "bench" / "replay.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
