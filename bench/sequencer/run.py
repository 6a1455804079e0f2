"""Benchmark of the sequencer: order events through ONE real `leadctl sequencer` worker
(RocksDB tables, changelogs, commands and LeadChanged produced and acknowledged), against a
baseline measured in the same run: a raw confluent-kafka consumer reading the same topic
(the target's ratio), and for context a do-nothing Faust worker on the same client stack.

Targets: >= 5,000 events/s per worker and >= 20 % of the raw consume rate;
RSS with every lead in state <= 500 MB up to 1M leads (the full run) and <= 1.5 GB at 5M
(issue 22; `target_rss_mb`); order event → command p99 <= 200 ms and max <= 1 s at 200
events/s.

    uv run python bench/sequencer/run.py            # 1,000,000 events over 200 tenants
    uv run python bench/sequencer/run.py --quick    # 50,000 events (smoke run)
    uv run python bench/sequencer/run.py --scale --events 5000000   # 5M leads, 5 min window

Scale mode (`--scale`): the latency window lasts 5 minutes (`--latency-seconds`), and 2 % of
the leads (`--due-fraction`) were created 7 days before an instant of the window, so their
last step (an email) falls due and the ticks emit it while orders are measured (they are
produced after the backlog, timed from its measured pace, and taken in before the window); the
worker's loop lag (`sequencer_event_loop_lag_seconds`), its batches and their stages over the
window are reported with p50/p95/p99/max and RSS (now and peak).

Phases: (1) produce N order events (one new lead each, 200 tenants, compact JSON, batched
confluent-kafka producer); (2) baselines: a raw consumer and a do-nothing Faust worker read
them (at most BASELINE_EVENTS); (3) the worker starts
on the backlog: events/s = N / (time from its first processed record to the last), read from
its /metrics; RSS (VmRSS and peak VmHWM from /proc) with every lead in state; (4) latency:
200 events/s for a while, each event's produce time → its command's arrival (the first
second is a warm-up, reported separately). The worker runs
with the projection off (the `leads` table is not part of these targets). The tenants' zone
is chosen so that it is midday there: every first step (email, now) is due at once.
Writes .local/bench/sequencer.json. Own database lo_bench_sequencer, fresh topic prefix.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402

from bench.common import (  # noqa: E402
    KAFKA,
    cpu_seconds,
    delete_topics_with_prefix,
    free_port,
    lead_ids,
    migrated_database,
    tz_at_local_hour,
)
from schemas.base import lead_id_for_order  # noqa: E402
from services.common.kafka.admin import ensure_topics  # noqa: E402
from services.common.kafka.config import producer_config  # noqa: E402
from services.common.topics import Topics  # noqa: E402
from services.sequencer.settings import SequencerSettings  # noqa: E402

LEAD_IDS = lead_ids()

#: The worker's batch settings when the environment does not set them (the settings' defaults)
BATCH_DEFAULTS = {
    "size": SequencerSettings.model_fields["sequencer_batch_size"].default,
    "ms": SequencerSettings.model_fields["sequencer_batch_ms"].default,
}

TARGET_RATE = 5000.0
TARGET_RATIO = 0.20
#: RSS with every lead in state: 500 MB up to 1M leads, 1.5 GB at 5M (issue 22's two points),
#: on the line through them in between and beyond (`target_rss_mb`).
TARGET_RSS_MB = 500.0
TARGET_RSS_MB_AT_5M = 1500.0
TARGET_MAX_MS = 1000.0
TARGET_P99_MS = 200.0
LATENCY_RATE = 200.0


def target_rss_mb(leads: int) -> float:
    """The RSS target with `leads` in state (see TARGET_RSS_MB)."""
    per_million = (TARGET_RSS_MB_AT_5M - TARGET_RSS_MB) / 4
    return TARGET_RSS_MB + max(0.0, leads / 1_000_000 - 1) * per_million


#: The first second at 200/s is reported separately (`p99_ms_including_warmup`): it covers
#: the worker's first records after the idle pause between the phases.
WARMUP_SECONDS = 1.0
#: The raw consumer and the do-nothing Faust worker read at most this many events.
BASELINE_EVENTS = 1_000_000
TENANTS = 200
PARTITIONS = 12
BENCH_DB = "lo_bench_sequencer"
#: When the default plan's last step (an email) falls due after a lead is created. A lead
#: created that long before the window has its first four steps over 24 h (max_late) overdue:
#: they are marked missed, not sent, so no min_gap after a send holds the last one back.
DUE_STEP_AFTER = timedelta(days=7)
#: Histograms of the worker read before and after the latency window (what the window cost).
WINDOW_HISTOGRAMS = (
    "sequencer_event_loop_lag_seconds",
    "sequencer_batch_seconds",
    "sequencer_batch_stage_seconds",
)


# --------------------------------------------------------------------------- payloads


def event_bytes(tenant: uuid.UUID, n: int, now_iso: str, occurred_iso: str | None = None) -> bytes:
    """A compact, valid OrderEvent (one new lead) without pydantic on the hot path; the lead
    was created at `occurred_iso` (default: now; its plan counts from then)."""
    order_id = f"b{n}"
    lead = lead_id_for_order(LEAD_IDS, tenant, order_id)
    occurred = occurred_iso or now_iso
    return (
        f'{{"schema_version":1,"event_id":"order:{order_id}:1","tenant_id":"{tenant}",'
        f'"lead_id":"{lead}","source":"webhook","entity":"order","operation":"insert",'
        f'"occurred_at":"{occurred}","ingested_at":"{now_iso}","order":{{"order_id":"{order_id}",'
        f'"number":"{n}","version":1}},"customer":{{"customer_id":"c{n}","first_name":"Sam",'
        f'"email":"sam{n}@example.com","phone":"+13125550150"}}}}'
    ).encode()


def backdated(leads: range, window_at: datetime, window_s: float) -> dict[int, str]:
    """The leads `leads` are created DUE_STEP_AFTER before an instant spread over the latency
    window starting at `window_at`: a step of each falls due, and the ticks emit it, while
    orders are measured."""
    return {
        n: (window_at - DUE_STEP_AFTER + timedelta(seconds=window_s * i / len(leads))).isoformat()
        for i, n in enumerate(leads)
    }


def produce_backlog(
    topic: str, tenants: list[uuid.UUID], leads: range, occurred: dict[int, str] | None = None
) -> float:
    producer = Producer(
        producer_config(KAFKA, client_id="bench-seq", linger_ms=20)
        | {"batch.num.messages": 10000, "queue.buffering.max.messages": 500000}
    )  # fmt: skip
    keys = [str(t).encode() for t in tenants]
    now_iso = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    for n in leads:
        t = n % len(tenants)
        while True:
            try:
                value = event_bytes(tenants[t], n, now_iso, (occurred or {}).get(n))
                producer.produce(topic, value, keys[t])
                break
            except BufferError:
                producer.poll(0.01)
        if n % 10000 == 0:
            producer.poll(0)
    left = producer.flush(120)
    if left:
        raise SystemExit(f"{left} events not acknowledged")
    return time.perf_counter() - started


# --------------------------------------------------------------------------- baseline


def raw_consume(topic: str, count: int) -> float:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"bench-raw-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen = 0
    started: float | None = None
    while seen < count:
        for msg in consumer.consume(10000, timeout=1.0):
            if msg.error() is None:
                if started is None:
                    started = time.perf_counter()
                seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return count / elapsed


def faust_noop_consume(topic: str, count: int) -> float:
    """Events/s of a do-nothing Faust worker on the same topic (bench/sequencer/faust_noop.py)."""
    script = ROOT / "bench" / "sequencer" / "faust_noop.py"
    proc = subprocess.run(
        [sys.executable, str(script), topic, str(count), KAFKA, str(PARTITIONS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=max(600.0, count / 1000),
    )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return float(line.split()[1])
    raise SystemExit(f"the Faust baseline failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


# --------------------------------------------------------------------------- the worker


class Worker:
    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "leadctl.main", "sequencer", "--no-projection"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def orders_done(self) -> float:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return 0.0
        total = 0.0
        for line in text.splitlines():
            if line.startswith("sequencer_records_total{") and 'topic="orders"' in line:
                total += float(line.rsplit(" ", 1)[1])
        return total

    def stages(self) -> dict[str, float]:
        """Where a batch's time went, µs per record (the worker's own histograms)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        sums: dict[str, float] = {}
        records = batches = 0.0
        for line in text.splitlines():
            if line.startswith("sequencer_batch_stage_seconds_sum{"):
                stage = line.split('stage="', 1)[1].split('"', 1)[0]
                sums[stage] = float(line.rsplit(" ", 1)[1])
            elif line.startswith("sequencer_batch_records_sum{"):
                records += float(line.rsplit(" ", 1)[1])
            elif line.startswith("sequencer_batch_records_count{"):
                batches += float(line.rsplit(" ", 1)[1])
        out = {k: round(v * 1e6 / max(records, 1.0), 1) for k, v in sums.items()}
        return out | {"records_per_batch": round(records / max(batches, 1.0), 1)}

    def histograms(self) -> dict[str, float]:
        """Every sample of WINDOW_HISTOGRAMS now (a series' full text → its value)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return {
            series: float(value)
            for line in text.splitlines()
            if line.startswith(WINDOW_HISTOGRAMS) and not line.startswith("#")
            for series, _, value in [line.rpartition(" ")]
            if "_created" not in series
        }

    def cpu_seconds(self) -> float:
        """CPU seconds (every thread: Python, librdkafka, RocksDB) so far."""
        return cpu_seconds(self.proc.pid) or 0.0

    def rss_mb(self) -> tuple[float, float]:
        values = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
        return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def wait_processed(worker: Worker, count: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while worker.orders_done() < count:
        if worker.proc.poll() is not None:
            raise SystemExit(f"worker died; see {worker.log}")
        if time.perf_counter() > deadline:
            raise SystemExit(f"worker processed {worker.orders_done():.0f}/{count} events")
        time.sleep(0.5)


def run_worker_backlog(worker: Worker, count: int, timeout: float) -> tuple[float, float]:
    """(events/s from the first processed record to the last, seconds to first record)."""
    t0 = time.perf_counter()
    first: float | None = None
    deadline = t0 + timeout
    done = 0.0
    while time.perf_counter() < deadline:
        if worker.proc.poll() is not None:
            raise SystemExit(f"worker died; see {worker.log}")
        done = worker.orders_done()
        now = time.perf_counter()
        if first is None and done > 0:
            first = now - 0.25  # the poll interval
            first_done = done
        if done >= count:
            assert first is not None
            return (count - first_done) / max(now - first, 1e-6), first - t0
        time.sleep(0.5)
    raise SystemExit(f"worker processed only {done:.0f}/{count} events in {timeout:.0f} s")


# --------------------------------------------------------------------------- latency


def window_costs(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """What the latency window cost the worker, from its histograms' growth: loop-lag
    observations over 0.1/0.25/1 s and the largest bucket reached; batches per agent, their
    mean and how many took over 0.1 s; seconds per stage."""
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}

    def le(series: str) -> float:
        return float(series.split('le="', 1)[1].split('"', 1)[0])

    lag = {k: v for k, v in delta.items() if k.startswith("sequencer_event_loop_lag_seconds")}
    lag_count = lag.get("sequencer_event_loop_lag_seconds_count", 0.0)
    buckets = sorted((le(k), v) for k, v in lag.items() if "_bucket" in k)
    under = dict(buckets)
    reached = next((bound for bound, v in buckets if v >= lag_count), float("inf"))
    out: dict[str, Any] = {
        "loop_lag": {
            "observations": lag_count,
            "mean_ms": 1000
            * lag.get("sequencer_event_loop_lag_seconds_sum", 0)
            / max(lag_count, 1),
            "over_100ms": lag_count - under.get(0.1, lag_count),
            "over_250ms": lag_count - under.get(0.25, lag_count),
            "over_1s": lag_count - under.get(1.0, lag_count),
            "max_at_most_s": reached,
        },
        "batches": {},
        "stage_seconds": {},
    }
    for k, v in delta.items():
        if k.startswith("sequencer_batch_seconds_count"):
            agent = k.split('agent="', 1)[1].split('"', 1)[0]
            total = delta.get(k.replace("_count", "_sum"), 0.0)
            slow = v - delta.get(k.replace("_count{", "_bucket{").replace("}", ',le="0.1"}'), v)
            if v:
                out["batches"][agent] = {
                    "count": v,
                    "mean_ms": 1000 * total / v,
                    "over_100ms": slow,
                }
        elif k.startswith("sequencer_batch_stage_seconds_sum"):
            stage = k.split('stage="', 1)[1].split('"', 1)[0]
            out["stage_seconds"][stage] = round(v, 3)
    return out


def latency(
    topics: Topics, tenants: list[uuid.UUID], seconds: float, rate: float = LATENCY_RATE
) -> dict[str, Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"bench-lat-{uuid.uuid4().hex}",
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 5,
        }
    )
    parts = [TopicPartition(topics.touchpoint_commands, p) for p in range(PARTITIONS)]
    ends = [consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts]
    consumer.assign(
        [TopicPartition(tp.topic, tp.partition, e) for tp, e in zip(parts, ends, strict=True)]
    )
    sent: dict[str, float] = {}
    got: list[float] = []
    warm_got: list[float] = []
    warmup: set[str] = set()
    warm = int(WARMUP_SECONDS * rate)
    due_steps = [0]  # later steps the ticks emitted meanwhile
    stop = threading.Event()

    def collect() -> None:
        while not stop.is_set() or len(got) + len(warm_got) < len(sent):
            for msg in consumer.consume(1000, timeout=0.05):
                if msg.error() is not None:
                    continue
                arrived = time.perf_counter()
                body = json.loads(msg.value())
                if body.get("step_index", 0) >= 1:
                    due_steps[0] += 1
                at = sent.get(body["lead_id"])
                if at is not None:
                    (warm_got if body["lead_id"] in warmup else got).append(arrived - at)
            if stop.is_set() and time.perf_counter() > stop_at[0]:
                break

    stop_at = [float("inf")]
    reader = threading.Thread(target=collect, daemon=True)
    reader.start()
    # the load producer connects (metadata, idempotent producer id) BEFORE the clock runs:
    # a cold librdkafka producer holds its first records ~0.5 s
    producer = Producer(producer_config(KAFKA, client_id="bench-lat", linger_ms=0))
    producer.list_topics(topics.order_events, timeout=10)
    time.sleep(2.0)  # the reader is positioned, the producer ready
    total = warm + int(seconds * rate)
    base = 10_000_000
    now_iso = datetime.now(UTC).isoformat()
    start = time.perf_counter()
    for i in range(total):
        target = start + i / rate
        delay = target - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = i % len(tenants)
        n = base + i
        lead = str(lead_id_for_order(LEAD_IDS, tenants[t], f"b{n}"))
        sent[lead] = time.perf_counter()
        if i < warm:
            warmup.add(lead)
        producer.produce(topics.order_events, event_bytes(tenants[t], n, now_iso), str(tenants[t]))
        producer.poll(0)
    producer.flush(30)
    stop_at[0] = time.perf_counter() + 15.0
    stop.set()
    reader.join(20)
    consumer.close()
    got.sort()
    everything = sorted(got + warm_got)

    def pct(p: float, values: list[float] = got) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] * 1000 if values else float("nan")

    return {
        "sent": total - warm,
        "received": len(got),
        "warmup_events_excluded": warm,
        "p99_ms_including_warmup": pct(0.99, everything),
        "rate": rate,
        "seconds": seconds,
        "due_steps_emitted": due_steps[0],
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": got[-1] * 1000 if got else float("nan"),
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (50,000 events)")
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--latency-seconds", type=float, default=None)
    parser.add_argument(
        "--scale",
        action="store_true",
        help="scale mode: a 5-minute latency window while the ticks emit due steps "
        "(--due-fraction of the leads fall due during it), with the worker's loop lag and "
        "batch stages over the window; use with --events 1000000 or 5000000",
    )
    parser.add_argument("--rate", type=float, default=LATENCY_RATE, help="orders/s measured")
    parser.add_argument(
        "--due-fraction",
        type=float,
        default=None,
        help="share of the backlog with a step falling due in the window (scale: 0.02)",
    )
    args = parser.parse_args()
    count = args.events or (50_000 if args.quick else 1_000_000)
    lat_seconds = args.latency_seconds or (10.0 if args.quick else 300.0 if args.scale else 30.0)
    due_fraction = (
        args.due_fraction if args.due_fraction is not None else (0.02 if args.scale else 0.0)
    )

    db_url = migrated_database(BENCH_DB)
    prefix = f"bseq{uuid.uuid4().hex[:8]}."
    topics = Topics(prefix)
    ensure_topics(KAFKA, partitions=PARTITIONS, names=topics.with_dlqs())
    tenants = [uuid.uuid4() for _ in range(TENANTS)]
    work = Path(tempfile.mkdtemp(prefix="bench-seq-"))
    # The leads with a step falling due in the window come after the backlog (their steps
    # are timed once the backlog's pace is known); the backlog is the rest.
    due_count = int(count * due_fraction)
    backlog = count - due_count
    print(f"producing {backlog:,} order events over {TENANTS} tenants ({prefix}) ...", flush=True)
    produce_s = produce_backlog(topics.order_events, tenants, range(backlog))
    print(f"  produced in {produce_s:.1f} s ({backlog / produce_s:,.0f}/s)", flush=True)
    # The baselines read at most BASELINE_EVENTS (a rate per event; a do-nothing worker keeps
    # no state, so more events would only make the run longer).
    baseline_n = min(backlog, BASELINE_EVENTS)
    raw_rate = raw_consume(topics.order_events, baseline_n)
    print(f"  raw consumer: {raw_rate:,.0f} events/s ({baseline_n:,} events)", flush=True)
    faust_rate = faust_noop_consume(topics.order_events, baseline_n)
    print(f"  do-nothing Faust worker: {faust_rate:,.0f} events/s", flush=True)

    port = free_port()
    env = dict(os.environ) | {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": str(PARTITIONS),
        "DATABASE_URL": db_url,
        "SEQUENCER_PORT": str(port),
        "SEQUENCER_HOST": "127.0.0.1",
        "SEQUENCER_DATA_DIR": str(work / "data"),
        "SEQUENCER_STORE": "rocksdb://",
        "SEQUENCER_DEFAULT_TIMEZONE": tz_at_local_hour(12),
        "LOG_LEVEL": "warning",
    }
    worker = Worker(env, port, work / "worker.log")
    try:
        rate, startup = run_worker_backlog(worker, backlog, timeout=max(600.0, count / 1000))
        if due_count:
            # time to take them in at the backlog's pace, and a margin
            window_at = datetime.now(UTC) + timedelta(seconds=10 + 1.5 * due_count / rate)
            due = range(backlog, count)
            occurred = backdated(due, window_at, lat_seconds)
            produce_backlog(topics.order_events, tenants, due, occurred)
            wait_processed(worker, count, timeout=max(300.0, 10 * due_count / rate))
            print(f"  {due_count:,} leads more have a step falling due from {window_at:%H:%M:%S}",
                  flush=True)  # fmt: skip
            time.sleep(max(0.0, (window_at - datetime.now(UTC)).total_seconds()))
        rss, hwm = worker.rss_mb()
        stages = worker.stages()
        print(f"  sequencer: {rate:,.0f} events/s (start-up {startup:.1f} s), "
              f"RSS {rss:.0f} MB, peak {hwm:.0f} MB", flush=True)  # fmt: skip
        print("  µs per record by batch stage (and records per batch): "
              + ", ".join(f"{k} {v:.0f}" for k, v in stages.items()), flush=True)  # fmt: skip
        before = worker.histograms()
        window_start = datetime.now(UTC)
        cpu_before = worker.cpu_seconds()
        lat = latency(topics, tenants, lat_seconds, args.rate)
        lat["worker_cpu_ms_per_order"] = (
            1000 * (worker.cpu_seconds() - cpu_before) / max(1, lat["sent"])
        )
        costs = window_costs(before, worker.histograms())
        rss_after, hwm_after = worker.rss_mb()
        print(f"  worker CPU over the window: {lat['worker_cpu_ms_per_order']:.2f} ms per "
              "order measured (due steps included)", flush=True)  # fmt: skip
        print(f"  window from {window_start:%H:%M:%S}: {lat['due_steps_emitted']:,} due steps "
              f"emitted by the ticks meanwhile; worker over the window: {json.dumps(costs)}",
              flush=True)  # fmt: skip
    finally:
        worker.stop()
    delete_topics_with_prefix(KAFKA, prefix)

    ratio = rate / raw_rate
    rss_target = target_rss_mb(count)
    rows = [
        ("events/s per worker", f"{rate:,.0f}", f">= {TARGET_RATE:,.0f}", rate >= TARGET_RATE),
        ("ratio vs raw consumer", f"{ratio:.1%}", f">= {TARGET_RATIO:.0%}", ratio >= TARGET_RATIO),
        ("RSS with all leads (MB)", f"{max(rss, rss_after):.0f} (peak {hwm_after:.0f})",
         f"<= {rss_target:,.0f} at {count:,}", max(rss, rss_after) <= rss_target),
        ("p99 order→command (ms)",
         f"{lat['p99_ms']:.1f} (p50 {lat['p50_ms']:.1f}, p95 {lat['p95_ms']:.1f})",
         f"<= {TARGET_P99_MS:.0f} @ {args.rate:.0f}/s",
         lat["p99_ms"] <= TARGET_P99_MS and lat["received"] == lat["sent"]),
        ("max order→command (ms)", f"{lat['max_ms']:.0f}",
         f"<= {TARGET_MAX_MS:,.0f} @ {args.rate:.0f}/s",
         lat["max_ms"] <= TARGET_MAX_MS and lat["received"] == lat["sent"]),
    ]  # fmt: skip
    mode = "quick" if args.quick else "scale" if args.scale else "full"
    print(
        f"\nsequencer benchmark ({mode}): {count:,} events, {TENANTS} tenants, "
        f"{PARTITIONS} partitions, {os.cpu_count()} cores (shared)"
    )
    print(f"baseline raw consumer: {raw_rate:,.0f} events/s")
    print(f"baseline do-nothing Faust worker: {faust_rate:,.0f} events/s "
          f"(sequencer at {rate / faust_rate:.0%} of it)")  # fmt: skip
    print(f"{'metric':<28}{'measured':<28}{'target':<22}ok")
    for name, value, target, ok in rows:
        print(f"{name:<28}{value:<28}{target:<22}{'yes' if ok else 'NO'}")
    out = {
        "benchmark": "sequencer",
        "mode": "quick" if args.quick else ("full" if count == 1_000_000 else "custom"),
        "at": datetime.now(UTC).isoformat(),
        "host": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "events": count,
        "tenants": TENANTS,
        "partitions": PARTITIONS,
        "produce_seconds": produce_s,
        "baseline_raw_consume_per_s": raw_rate,
        "sequencer_events_per_s": rate,
        "ratio_vs_raw": ratio,
        "baseline_faust_noop_per_s": faust_rate,
        "ratio_vs_faust_noop": rate / faust_rate,
        "worker_startup_s": startup,
        "batch_stage_us_per_record": stages,
        "batch_size": int(os.environ.get("SEQUENCER_BATCH_SIZE", BATCH_DEFAULTS["size"])),
        "batch_ms": float(os.environ.get("SEQUENCER_BATCH_MS", BATCH_DEFAULTS["ms"])),
        "rss_mb_after_backlog": rss,
        "rss_mb_after_latency": rss_after,
        "peak_rss_mb": hwm_after,
        "latency": lat,
        "window_costs": costs,
        "scale": args.scale,
        "due_fraction": due_fraction,
        "targets": {
            "events_per_s": TARGET_RATE,
            "ratio": TARGET_RATIO,
            "rss_mb": rss_target,
            "p99_ms": TARGET_P99_MS,
            "max_ms": TARGET_MAX_MS,
        },
        "ok": {name: ok for name, _, _, ok in rows},
    }
    path = ROOT / ".local" / "bench" / "sequencer.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
