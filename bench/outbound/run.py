"""Benchmark of the outbound service: sends/s of ONE process (the real consumer, safety gate,
PostgreSQL ledger, official sendgrid/twilio libraries) to the fake providers, and the latency
of the ledger claim.

Measured in the same run, on the same topic and fakes:
- baseline A, "consume": raw consume + decode rate of the same topic (a fresh group), the
  ceiling of the Kafka side;
- baseline B, "bare POST": the same official libraries posting the same messages straight to
  the fakes, with the same concurrency and no ledger/gate/Kafka, the ceiling of the provider side.

Targets: >= 500 sends/s per process, claim p99 <= 10 ms.

    uv run python bench/outbound/run.py            # full run (20,000 commands)
    uv run python bench/outbound/run.py --quick    # smoke run (2,000 commands)
    uv run python bench/outbound/run.py --cluster  # also on a 3-node cluster, RF 3 / min ISR 2

`--cluster` measures the same service again on a private 3-node cluster (bench/chaos/cluster.py:
its own state and ports, stopped at the end) with the commands topic at RF 3 / min ISR 2 (every
outcome acknowledged by two replicas), and reports its sends/s and the ratio to the single
broker of the same run.

Writes .local/bench/outbound.json. Only loopback addresses. Uses its own database
(lo_bench_outbound, created and migrated here) and a fresh topic prefix, deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from bench.common import (  # noqa: E402
    KAFKA,
    SECRETS,
    delete_topics_with_prefix,
    free_port,
    migrated_database,
    tz_at_local_hour,
)
from fakes._recorder import FakeAdmin  # noqa: E402
from schemas.base import Channel, command_id_for  # noqa: E402
from schemas.events import Recipient, TouchPointCommand  # noqa: E402
from services.common.kafka.admin import ensure_topics  # noqa: E402
from services.common.kafka.codec import decode  # noqa: E402
from services.common.kafka.consumer import AtLeastOnceConsumer  # noqa: E402
from services.common.kafka.partition_buffer import PartitionBuffer  # noqa: E402
from services.common.kafka.producer import KafkaProducer  # noqa: E402
from services.common.settings import load_settings  # noqa: E402
from services.outbound.adapters.templates import JinjaRenderer  # noqa: E402
from services.outbound.bootstrap import build, build_senders  # noqa: E402
from services.outbound.settings import OutboundSettings  # noqa: E402

TARGET_SENDS = 500.0
TARGET_CLAIM_P99_MS = 10.0
BENCH_DB = "lo_bench_outbound"
PARTITIONS = 12
TENANTS = 48
CHAT = "https://chat.example.com"


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"fake provider on port {port} did not start")


def prepare_database() -> str:
    url = migrated_database(BENCH_DB)
    with psycopg.connect(url, autocommit=True) as conn:  # every run starts from empty tables
        conn.execute("TRUNCATE job_executions, suppressions, source_consent")
        conn.execute("DELETE FROM tenants WHERE name LIKE 'bench %'")
    return url


def add_tenants(url: str, n: int) -> list[uuid.UUID]:
    tz = tz_at_local_hour(12)
    ids = [uuid.uuid4() for _ in range(n)]
    with psycopg.connect(url, autocommit=True) as conn:
        for i, tid in enumerate(ids):
            conn.execute(
                "INSERT INTO shopmonkey_companies (id, name) VALUES (%s, %s)"
                " ON CONFLICT (id) DO NOTHING",
                (f"co_{i}", f"bench company {i}"),
            )
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
                " timezone, postal_address, active)"
                " VALUES (%s, %s, %s, %s, %s, %s, true)",
                (tid, f"bench {i}", f"co_{i}", f"loc_{tid.hex[:8]}", tz, "1 Main St"),
            )
    return ids


#: Area codes of the leads' numbers (+1 NPA 555 XXXX: valid to libphonenumber, all listed).
AREA_CODES = (202, 206, 212, 303, 305, 312, 404, 415, 512, 617)


def bench_phone(i: int) -> str:
    """Lead i's number, distinct for the first 100,000 leads."""
    return f"+1{AREA_CODES[(i // 10_000) % len(AREA_CODES)]}555{i % 10_000:04d}"


def add_sms_consent(url: str, n: int, tenants: list[uuid.UUID]) -> None:
    """Lead i's number opted in to texts at its tenant's company, as ingest records it from a
    Shopmonkey customer (the gate sends no SMS without it: `sms_no_consent`)."""
    companies = {tid: f"co_{i}" for i, tid in enumerate(tenants)}
    rows = [
        (companies[tenants[i % len(tenants)]], bench_phone(i), datetime.now(UTC)) for i in range(n)
    ]
    with psycopg.connect(url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO source_consent (company_id, channel, contact, source, opted_in,"
            " line_type, changed_at, event_key) VALUES (%s, 'sms', %s, 'shopmonkey', true,"
            " 'mobile', %s, 'bench') ON CONFLICT DO NOTHING",
            rows,
        )


def make_commands(
    n: int, tenants: list[uuid.UUID], channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.SMS)
) -> list[TouchPointCommand]:
    now = datetime.now(UTC) - timedelta(seconds=1)
    out = []
    for i in range(n):
        lead = uuid.uuid4()
        channel = channels[i % len(channels)]
        out.append(
            TouchPointCommand(
                command_id=command_id_for(lead, 0, channel),
                tenant_id=tenants[i % len(tenants)],
                lead_id=lead,
                step_index=0,
                channel=channel,
                template="estimate_followup" if channel is Channel.EMAIL else "estimate_reminder",
                due_at=now,
                issued_at=now,
                recipient=Recipient(
                    email=f"lead{i}@bench.example", phone=bench_phone(i), first_name="Pat"
                ),
                context={"vehicle": "2020 Ford F-150"},
            )
        )
    return out


def produce(topic: str, commands: list[TouchPointCommand], kafka: str = KAFKA) -> float:
    producer = KafkaProducer(kafka, client_id="bench-outbound").start()
    buffer = PartitionBuffer(producer)

    async def send_all() -> None:
        for i in range(0, len(commands), 5000):
            for c in commands[i : i + 5000]:
                buffer.add_keyed(topic, str(c.tenant_id), c.to_bytes())
            await buffer.flush()

    try:
        started = time.perf_counter()
        asyncio.run(send_all())
        return time.perf_counter() - started
    finally:
        producer.close()


def baseline_consume(topic: str, n: int) -> float:
    """Raw consume + decode of the same topic by a fresh group: records/s."""
    consumer = AtLeastOnceConsumer(
        KAFKA, group_id=f"bench-raw-{uuid.uuid4().hex[:8]}", topics=[topic], client_id="bench"
    )
    try:
        got, started = 0, None
        deadline = time.monotonic() + 120
        while got < n and time.monotonic() < deadline:
            msgs = consumer.poll_batch(500, 0.5)
            if msgs and started is None:
                started = time.perf_counter()
            for m in msgs:
                decode(TouchPointCommand, m.value())
            got += len(msgs)
        if started is None or got < n:
            raise RuntimeError(f"raw consume read {got} of {n}")
        return n / (time.perf_counter() - started)
    finally:
        consumer.close()


def approve(message: Any) -> Any:
    """`message` as the safety gate would hand it on: an SMS with its number approved."""
    from services.outbound.domain.model import SmsMessage

    return replace(message, approved_to=message.to) if isinstance(message, SmsMessage) else message


async def baseline_bare_post(
    settings: OutboundSettings, commands: list[TouchPointCommand], concurrency: int
) -> float:
    """The official libraries posting the same messages straight to the fakes: sends/s."""
    from services.outbound.domain.model import TenantProfile

    executor = ThreadPoolExecutor(settings.outbound_concurrency, thread_name_prefix="bare")
    senders = build_senders(settings, executor)
    renderer = JinjaRenderer(
        chat_base_url=CHAT,
        from_email=settings.sendgrid_from_email,
        from_name=None,
        unsubscribe_base_url=settings.unsubscribe_base_url,
        unsubscribe_signer=settings.unsubscribe_signer,
    )
    tenant = TenantProfile(
        id=uuid.uuid4(), name="bench", timezone="UTC", active=True, postal_address="1 Main St"
    )
    now = datetime.now(UTC)
    # the gate is what the baseline leaves out: each SMS carries the number it would approve
    # (every bench number is whitelisted), or the Twilio sender refuses it
    messages = [
        approve(renderer.render(c, tenant, now=now, validity_seconds=600)) for c in commands
    ]
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for m, c in zip(messages, commands, strict=True):
        queue.put_nowait((senders[c.channel], m))

    async def worker() -> None:
        while not queue.empty():
            sender, message = queue.get_nowait()
            await sender.send(message)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    for s in senders.values():
        close = getattr(s, "close", None)
        if close is not None:
            await close()
    executor.shutdown(wait=False)
    return len(commands) / elapsed


async def run_outbound(settings: OutboundSettings, url: str, n: int) -> dict[str, Any]:
    """The real service in this process until the ledger holds an outcome for all n."""
    stop = asyncio.Event()
    async with build(settings) as outbound:
        samples: list[float] = []
        outbound.ledger.claim_samples = samples
        started = time.perf_counter()
        cpu0 = time.process_time()
        task = asyncio.create_task(outbound.run(stop))
        first: float | None = None
        final = 0
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                if first is None and samples:
                    first = time.perf_counter()
                cur = await conn.execute(
                    "SELECT count(*) FILTER (WHERE status <> 'claimed') FROM job_executions"
                )
                row = await cur.fetchone()
                final = int(row[0]) if row else 0
                if final >= n:
                    break
                await asyncio.sleep(0.1)
            done = time.perf_counter()
            cpu = time.process_time() - cpu0
            cur = await conn.execute("SELECT status, count(*) FROM job_executions GROUP BY 1")
            statuses = {s: int(c) for s, c in await cur.fetchall()}
        stop.set()
        await asyncio.wait_for(task, timeout=60)
    if final < n:
        raise RuntimeError(f"only {final} of {n} commands decided: {statuses}")
    assert first is not None
    ms = sorted(s * 1000 for s in samples)
    return {
        "seconds_from_first_claim": done - first,
        "seconds_with_startup": done - started,
        "process_cpu_seconds": cpu,
        "statuses": statuses,
        "claims": len(ms),
        "claim_ms": {
            "p50": statistics.median(ms),
            "p95": ms[int(0.95 * (len(ms) - 1))],
            "p99": ms[int(0.99 * (len(ms) - 1))],
            "max": ms[-1],
        },
    }


async def isolated_claims(url: str, tenant: uuid.UUID, n: int) -> dict[str, float]:
    """Claim latency without the pipeline's event-loop queueing: n claims one after the other
    on the same ledger table (already holding the run's rows), then finished as skipped."""
    from services.outbound.adapters.ledger_pg import PostgresLedger
    from services.outbound.adapters.pg_pool import open_pool
    from services.outbound.domain.model import LedgerStatus

    pool = await open_pool(url, size=2)
    try:
        ledger = PostgresLedger(pool)
        samples: list[float] = []
        ledger.claim_samples = samples
        now = datetime.now(UTC)
        for cmd in make_commands(n, [tenant]):
            await ledger.claim(cmd, recipient=cmd.recipient.email, now=now, cap_since=now)
            await ledger.finish(
                cmd.command_id, status=LedgerStatus.SKIPPED, reason="bench", now=now
            )
    finally:
        await pool.close()
    ms = sorted(s * 1000 for s in samples)
    return {
        "p50": statistics.median(ms),
        "p99": ms[int(0.99 * (len(ms) - 1))],
        "max": ms[-1],
    }


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_fake(kind: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "leadctl.main", "simulate", kind, "--port", str(port)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    wait_port(port)
    return proc


def on_cluster(
    settings: OutboundSettings, url: str, tenants: list[uuid.UUID], n: int, channels: Any
) -> dict[str, Any]:
    """The same measurement on a private 3-node cluster, topics at RF 3 / min ISR 2."""
    from bench.chaos.cluster import LocalCluster, free_port_base

    state = ROOT / ".local" / "bench" / "cluster-kafka"
    shutil.rmtree(state, ignore_errors=True)
    cluster = LocalCluster(state, free_port_base(), heap="-Xmx512m -Xms256m", quick_jit=False)
    try:
        cluster.up()
        on = settings.model_copy(
            update={
                "kafka_bootstrap_servers": cluster.bootstrap,
                "kafka_replication_factor": 3,
                "outbound_group_id": f"bench-{uuid.uuid4().hex[:8]}",
            }
        )
        ensure_topics(
            cluster.bootstrap, partitions=PARTITIONS, replication=3, names=on.topics.with_dlqs()
        )
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("TRUNCATE job_executions")
        commands = make_commands(n, tenants, channels)
        produce(on.topics.touchpoint_commands, commands, cluster.bootstrap)
        result = asyncio.run(run_outbound(on, url, n))
    finally:
        cluster.down()
        shutil.rmtree(state, ignore_errors=True)
    sends = result["statuses"].get("sent", 0)
    return {
        "replication_factor": 3,
        "min_insync_replicas": 2,
        "sends": sends,
        "sends_per_second": sends / result["seconds_from_first_claim"],
        "claim_ms": result["claim_ms"],
        "statuses": result["statuses"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run (2,000 commands)")
    parser.add_argument("-n", type=int, default=None, help="number of commands")
    parser.add_argument(
        "--channels",
        choices=["both", "email", "sms"],
        default="both",
        help="mix of the commands (profiling: email goes through SendGrid's threads)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="OUTBOUND_CONCURRENCY of the run (fakes answer in ~1 ms)",
    )
    parser.add_argument(
        "--cluster", action="store_true", help="also on a 3-node cluster (RF 3, min ISR 2)"
    )
    args = parser.parse_args()
    n = args.n or (2_000 if args.quick else 20_000)
    logging.basicConfig(level=logging.WARNING)
    out_dir = ROOT / ".local" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)

    url = prepare_database()
    tenants = add_tenants(url, TENANTS)
    add_sms_consent(url, n, tenants)
    prefix = f"bench{uuid.uuid4().hex[:8]}."
    sg_port, tw_port = free_port(), free_port()
    fakes = [
        start_fake("sendgrid", sg_port, out_dir / "outbound-fakes.log"),
        start_fake("twilio", tw_port, out_dir / "outbound-fakes.log"),
    ]
    mix = {"both": (Channel.EMAIL, Channel.SMS), "email": (Channel.EMAIL,), "sms": (Channel.SMS,)}
    commands = make_commands(n, tenants, mix[args.channels])
    settings = load_settings(
        OutboundSettings,
        database_url=url,
        kafka_bootstrap_servers=KAFKA,
        kafka_topic_prefix=prefix,
        kafka_partitions=PARTITIONS,
        log_level="warning",
        link_signing_keys=SECRETS["LINK_SIGNING_KEYS"],
        lead_email_whitelist=",".join(f"lead{i}@bench.example" for i in range(n)),
        lead_phone_whitelist=",".join(bench_phone(i) for i in range(n)),
        chat_base_url=CHAT,
        sendgrid_api_key="SG.bench",
        sendgrid_api_base_url=f"http://127.0.0.1:{sg_port}",
        twilio_account_sid="AC" + "0" * 32,
        twilio_auth_token="bench",  # noqa: S106 (the fake accepts any token)
        twilio_phone_number="+12025550199",
        twilio_api_base_url=f"http://127.0.0.1:{tw_port}",
        twilio_rate_per_second=1e6,
        twilio_rate_burst=1_000_000,
        sendgrid_rate_per_second=1e6,
        sendgrid_rate_burst=1_000_000,
        outbound_concurrency=args.concurrency,
        outbound_batch_size=1000,
        db_pool_size=min(32, args.concurrency),
        outbound_group_id=f"bench-{uuid.uuid4().hex[:8]}",
        outbound_host="127.0.0.1",
        outbound_port=free_port(),
    )
    topic = settings.topics.touchpoint_commands
    try:
        ensure_topics(KAFKA, partitions=PARTITIONS, names=settings.topics.with_dlqs())
        produce_s = produce(topic, commands)
        consume_rate = baseline_consume(topic, n)
        bare_n = min(n, 4_000)
        bare_rate = asyncio.run(baseline_bare_post(settings, commands[:bare_n], args.concurrency))
        for port in (sg_port, tw_port):
            FakeAdmin(f"http://127.0.0.1:{port}").clear()
        fakes_cpu0 = sum(cpu_seconds(p.pid) for p in fakes)
        result = asyncio.run(run_outbound(settings, url, n))
        fakes_cpu = sum(cpu_seconds(p.pid) for p in fakes) - fakes_cpu0
        isolated = asyncio.run(isolated_claims(url, tenants[0], 1000 if not args.quick else 300))
        accepted = sum(
            1
            for port in (sg_port, tw_port)
            for r in FakeAdmin(f"http://127.0.0.1:{port}", timeout=60).requests()
            if r["accepted"] and r["method"] == "POST"
        )
        cluster = None
        if args.cluster:
            cluster = on_cluster(settings, url, tenants, n, mix[args.channels])
    finally:
        delete_topics_with_prefix(KAFKA, prefix)
        for proc in fakes:
            proc.terminate()
            proc.wait(10)

    sends = result["statuses"].get("sent", 0)
    rate = sends / result["seconds_from_first_claim"]
    p99 = result["claim_ms"]["p99"]
    report = {
        "benchmark": "outbound",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "commands": n,
        "channels": args.channels,
        "tenants": TENANTS,
        "partitions": PARTITIONS,
        "concurrency": args.concurrency,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "produce_seconds": produce_s,
        "sends": sends,
        "provider_creates_seen": accepted,
        "exactly_once": accepted == sends == n,
        "sends_per_second": rate,
        "sends_per_second_with_startup": sends / result["seconds_with_startup"],
        "claim_ms": result["claim_ms"],
        "claim_ms_isolated": isolated,
        "outbound_process_cpu_ms_per_send": 1000 * result["process_cpu_seconds"] / max(1, sends),
        "fake_providers_cpu_ms_per_send": 1000 * fakes_cpu / max(1, sends),
        "load_average": os.getloadavg(),
        "baseline_consume_per_second": consume_rate,
        "baseline_bare_post_per_second": bare_rate,
        "ratio_vs_consume": rate / consume_rate,
        "ratio_vs_bare_post": rate / bare_rate,
        "targets": {"sends_per_second": TARGET_SENDS, "claim_p99_ms": TARGET_CLAIM_P99_MS},
        "meets_targets": rate >= TARGET_SENDS and p99 <= TARGET_CLAIM_P99_MS,
        "statuses": result["statuses"],
    }
    if cluster is not None:
        cluster["ratio_to_single_broker"] = cluster["sends_per_second"] / rate
        report["cluster"] = cluster
    (out_dir / "outbound.json").write_text(json.dumps(report, indent=2) + "\n")

    rows = [
        ("outbound sends/s (1 process)", f"{rate:,.0f}", f">= {TARGET_SENDS:.0f}",
         "ok" if rate >= TARGET_SENDS else "MISSED"),
        ("  incl. consumer start-up", f"{report['sends_per_second_with_startup']:,.0f}", "", ""),
        ("baseline: raw consume+decode/s", f"{consume_rate:,.0f}",
         f"ratio {report['ratio_vs_consume']:.2f}", ""),
        ("baseline: bare lib POST/s", f"{bare_rate:,.0f}",
         f"ratio {report['ratio_vs_bare_post']:.2f}", ""),
        ("claim p50 / p95 ms",
         f"{result['claim_ms']['p50']:.2f} / {result['claim_ms']['p95']:.2f}", "", ""),
        ("claim p99 ms (in the loaded pipeline)", f"{p99:.2f}", f"<= {TARGET_CLAIM_P99_MS:.0f}",
         "ok" if p99 <= TARGET_CLAIM_P99_MS else "MISSED"),
        ("claim p50 / p99 ms (sequential)",
         f"{isolated['p50']:.2f} / {isolated['p99']:.2f}", f"<= {TARGET_CLAIM_P99_MS:.0f}",
         "ok" if isolated["p99"] <= TARGET_CLAIM_P99_MS else "MISSED"),
        ("CPU ms/send: outbound / fakes",
         f"{report['outbound_process_cpu_ms_per_send']:.2f} / "
         f"{report['fake_providers_cpu_ms_per_send']:.2f}", "", ""),
        ("provider creates / sent / commands", f"{accepted} / {sends} / {n}", "",
         "ok" if report["exactly_once"] else "MISMATCH"),
    ]  # fmt: skip
    if cluster is not None:
        rows.append(
            ("3-node RF 3 sends/s (same run)", f"{cluster['sends_per_second']:,.0f}",
             f"ratio {cluster['ratio_to_single_broker']:.2f}", "")
        )  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nbench/outbound ({n} commands, {TENANTS} tenants, concurrency {args.concurrency})")
    for name, value, target, verdict in rows:
        print(f"  {name:<36} {value:>16}  {target:<14} {verdict}")
    print(f"  machine: {os.cpu_count()} cores, load average {load}")
    print(f"  -> {out_dir / 'outbound.json'}")


if __name__ == "__main__":
    main()
