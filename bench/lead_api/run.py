"""Benchmark of the lead API (chat service): `GET /api/leads/{leadId}` latency on a warm
database, through the real ingest app (create_app, its PostgreSQL pool, the bearer-token check
and the one-query JSON view).

Measured in the same run, against the same process, interleaved request by request:
- baseline: `GET /healthz` of the same app (HTTP + aiohttp overhead, no database);
- lead API: `GET /api/leads/{id}` of random leads of random tenants (each with its token).
Both sequentially (one client, keep-alive: the answer time a chat request sees) and with 8
concurrent clients. Target: p99 <= 20 ms on a warm database. The app's own handling
time histogram (`ingest_signal_request_seconds`, from /metrics) is reported next to the
client-side figures: on a shared 2-core machine the client and other load distort the latter.

    uv run python bench/lead_api/run.py            # full run (5,000 leads, 4,000 requests)
    uv run python bench/lead_api/run.py --quick    # smoke run

Writes .local/bench/lead_api.json. Only loopback addresses. Uses its own database
(lo_bench_lead_api, created, migrated and filled here).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import psycopg  # noqa: E402

from bench.common import KAFKA, SECRETS, free_port, migrated_database  # noqa: E402
from services.ingest.adapters.lead_reader_pg import hash_token  # noqa: E402

TARGET_P99_MS = 20.0
BENCH_DB = "lo_bench_lead_api"
TENANTS = 20
TOUCHES_PER_LEAD = 5
CONCURRENCY = 8


def prepare_database(
    leads: int,
) -> tuple[str, dict[uuid.UUID, str], dict[uuid.UUID, list[uuid.UUID]]]:
    """Create/migrate the bench DB and fill it: tenants with hours, services, leads, touches."""
    url = migrated_database(BENCH_DB)
    tokens: dict[uuid.UUID, str] = {}
    by_tenant: dict[uuid.UUID, list[uuid.UUID]] = {}
    now = datetime.now(UTC)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE job_executions, suppressions, leads")
        conn.execute("DELETE FROM tenants WHERE name LIKE 'bench %'")
        for i in range(TENANTS):
            tid, token = uuid.uuid4(), f"lak_bench_{uuid.uuid4().hex}"
            tokens[tid] = token
            by_tenant[tid] = []
            conn.execute(
                "INSERT INTO shopmonkey_companies (id, name) VALUES (%s, %s)",
                (f"co_bench_{tid.hex[:8]}", f"bench company {i}"),
            )
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
                " timezone, postal_address, phone, lead_api_key_sha256)"
                " VALUES (%s, %s, %s, %s, 'America/Chicago', '1 Main St', '+12025550100', %s)",
                (tid, f"bench {i}", f"co_bench_{tid.hex[:8]}", f"loc_{i}", hash_token(token)),
            )
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO location_hours (tenant_id, weekday, opens_at, closes_at)"
                    " VALUES (%s, %s, '08:00', '18:00')",
                    [(tid, d) for d in range(6)],
                )
                cur.executemany(
                    "INSERT INTO service_catalog (tenant_id, code, name, price_cents)"
                    " VALUES (%s, %s, %s, %s)",
                    [(tid, f"svc{k}", f"Service {k}", 10000 + k) for k in range(6)],
                )
        tenant_ids = list(tokens)
        with conn.cursor() as cur:
            with cur.copy(
                "COPY leads (lead_id, tenant_id, state, source, version, first_name, email, phone,"
                " vehicle, services, created_at, updated_at, last_touch_at, touches_sent)"
                " FROM STDIN"
            ) as copy:
                for n in range(leads):
                    lid, tid = uuid.uuid4(), tenant_ids[n % TENANTS]
                    by_tenant[tid].append(lid)
                    copy.write_row(
                        (lid, tid, "contacted", "webhook", 3, f"Lead{n}", f"l{n}@example.com",
                         f"+1555{n:07d}", "2019 Honda Civic", '["Window tint"]', now, now, now,
                         TOUCHES_PER_LEAD)
                    )  # fmt: skip
            with cur.copy(
                "COPY job_executions (command_id, tenant_id, lead_id, step_index, channel,"
                " template, recipient, status, reason, provider, provider_message_id,"
                " delivery_status, claimed_at, decided_at) FROM STDIN"
            ) as copy:
                for tid, lead_ids in by_tenant.items():
                    for lid in lead_ids:
                        for step in range(TOUCHES_PER_LEAD):
                            at = now - timedelta(hours=step)
                            channel = "email" if step % 2 == 0 else "sms"
                            copy.write_row(
                                (uuid.uuid4(), tid, lid, step, channel, "estimate_checkin",
                                 "x@example.com", "sent", "sent", "sendgrid",
                                 uuid.uuid4().hex, "delivered", at, at)
                            )  # fmt: skip
        conn.execute("ANALYZE leads")
        conn.execute("ANALYZE job_executions")
    return url, tokens, by_tenant


def start_server(url: str, port: int, admin_port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "KAFKA_TOPIC_PREFIX": f"bench{uuid.uuid4().hex[:6]}.",
        "SHOPMONKEY_API_BASE_URL": "http://127.0.0.1:9/v3",
        "LOG_LEVEL": "warning",
        **SECRETS,
    }
    env.pop("TENANT_ID", None)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "lead_api" / "server.py"),
            str(port),
            str(admin_port),
        ],
        env=env,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with closing(socket.socket()) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if proc.poll() is not None:
            raise SystemExit("the ingest app did not start")
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the ingest app did not open its port")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "p99": pct(values, 99),
        "max": max(values),
        "mean": statistics.fmean(values),
    }


async def run_load(
    base: str,
    tokens: dict[uuid.UUID, str],
    by_tenant: dict[uuid.UUID, list[uuid.UUID]],
    *,
    requests: int,
    concurrency: int,
) -> tuple[list[float], list[float], dict[int, int]]:
    """Each client alternates /healthz and /api/leads/{id}; latencies in ms."""
    lead_ms: list[float] = []
    base_ms: list[float] = []
    statuses: dict[int, int] = {}
    tenants = list(by_tenant)
    per_client = max(1, requests // concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def timed(path: str, headers: dict[str, str] | None = None) -> float:
            started = time.perf_counter()
            async with session.get(base + path, headers=headers) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
            return (time.perf_counter() - started) * 1000

        async def client(seed: int) -> None:
            rng = random.Random(seed)
            for _ in range(per_client):
                tid = rng.choice(tenants)
                lid = rng.choice(by_tenant[tid])
                auth = {"Authorization": f"Bearer {tokens[tid]}"}
                base_ms.append(await timed("/healthz"))
                lead_ms.append(await timed(f"/api/leads/{lid}", auth))

        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return lead_ms, base_ms, statuses


def server_buckets(admin: str) -> dict[float, float]:
    """Cumulative counts of the app's own `get_lead` handling-time histogram (server side,
    from the admin listener's /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(admin + "/metrics", timeout=10) as resp:  # noqa: S310 (loopback)
        text = resp.read().decode()
    out: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "ingest_signal_request_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("route") == "get_lead":
                out[float(sample.labels["le"])] = sample.value
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_side(before: dict[float, float], after: dict[float, float]) -> dict[str, float]:
    """Share answered within 20 ms and the bucket bound holding the p99, from two scrapes."""
    delta = {le: after.get(le, 0.0) - before.get(le, 0.0) for le in after}
    total = delta.get(float("inf"), 0.0)
    if not total:
        return {"requests": 0.0, "share_within_20ms": 0.0, "p99_at_most_ms": float("nan")}
    p99_bound = next(le for le in sorted(delta) if delta[le] / total >= 0.99)
    return {
        "requests": total,
        "share_within_20ms": delta.get(0.02, 0.0) / total,
        "p99_at_most_ms": p99_bound * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    args = parser.parse_args()
    leads = 500 if args.quick else 5000
    requests = 400 if args.quick else 4000
    warmup = 100 if args.quick else 500

    url, tokens, by_tenant = prepare_database(leads)
    port, admin_port = free_port(), free_port()
    proc = start_server(url, port, admin_port)
    base, admin = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}"
    try:
        asyncio.run(run_load(base, tokens, by_tenant, requests=warmup, concurrency=2))
        scrape0, cpu0 = server_buckets(admin), cpu_seconds(proc.pid)
        seq_lead, seq_base, seq_status = asyncio.run(
            run_load(base, tokens, by_tenant, requests=requests, concurrency=1)
        )
        scrape1, cpu1 = server_buckets(admin), cpu_seconds(proc.pid)
        con_lead, con_base, con_status = asyncio.run(
            run_load(base, tokens, by_tenant, requests=requests, concurrency=CONCURRENCY)
        )
        scrape2, cpu2 = server_buckets(admin), cpu_seconds(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()

    seq, seq_b = summary(seq_lead), summary(seq_base)
    con, con_b = summary(con_lead), summary(con_base)
    ok_statuses = set(seq_status) | set(con_status) == {200}
    report: dict[str, Any] = {
        "benchmark": "lead_api",
        "quick": args.quick,
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_average": os.getloadavg(),
        "data": {"tenants": TENANTS, "leads": leads, "touches_per_lead": TOUCHES_PER_LEAD},
        "sequential_ms": {"lead_api": seq, "baseline_healthz": seq_b},
        "concurrent_ms": {"clients": CONCURRENCY, "lead_api": con, "baseline_healthz": con_b},
        "ratio_p99_vs_baseline": {
            "sequential": seq["p99"] / seq_b["p99"],
            "concurrent": con["p99"] / con_b["p99"],
        },
        # both routes of a phase: 2 requests per measured pair
        "server_cpu_ms_per_request": {
            "sequential": 1000 * (cpu1 - cpu0) / max(1, 2 * len(seq_lead)),
            "concurrent": 1000 * (cpu2 - cpu1) / max(1, 2 * len(con_lead)),
        },
        "server_side": {
            "sequential": server_side(scrape0, scrape1),
            "concurrent": server_side(scrape1, scrape2),
        },
        "statuses": {"sequential": seq_status, "concurrent": con_status},
        "target": {"p99_ms": TARGET_P99_MS},
        "meets_target": ok_statuses and seq["p99"] <= TARGET_P99_MS,
        "meets_target_concurrent": ok_statuses and con["p99"] <= TARGET_P99_MS,
    }
    out_dir = ROOT / ".local" / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "lead_api.json").write_text(json.dumps(report, indent=2, default=str) + "\n")

    def verdict(p99: float) -> str:
        return "ok" if ok_statuses and p99 <= TARGET_P99_MS else "MISSED"

    ratio = report["ratio_p99_vs_baseline"]
    srv = report["server_side"]
    all_statuses = {
        code: seq_status.get(code, 0) + con_status.get(code, 0)
        for code in set(seq_status) | set(con_status)
    }
    rows = [
        ("baseline GET /healthz p50/p99 (1 client)",
         f"{seq_b['p50']:.2f} / {seq_b['p99']:.2f}", "", ""),
        ("GET /api/leads/{id} p50/p95 (1 client)", f"{seq['p50']:.2f} / {seq['p95']:.2f}", "", ""),
        ("GET /api/leads/{id} p99 (1 client)", f"{seq['p99']:.2f}",
         f"<= {TARGET_P99_MS:.0f} ms", verdict(seq["p99"])),
        ("  ratio p99 vs baseline", f"{ratio['sequential']:.1f}x", "", ""),
        (f"baseline GET /healthz p50/p99 ({CONCURRENCY} clients)",
         f"{con_b['p50']:.2f} / {con_b['p99']:.2f}", "", ""),
        (f"GET /api/leads/{{id}} p50/p99 ({CONCURRENCY} clients)",
         f"{con['p50']:.2f} / {con['p99']:.2f}", f"<= {TARGET_P99_MS:.0f} ms",
         verdict(con["p99"])),
        ("  ratio p99 vs baseline", f"{ratio['concurrent']:.1f}x", "", ""),
        ("server side: share <= 20 ms (1 / 8 clients)",
         f"{srv['sequential']['share_within_20ms']:.2%} / "
         f"{srv['concurrent']['share_within_20ms']:.2%}", "", ""),
        ("server side: p99 bucket bound ms (1 / 8)",
         f"{srv['sequential']['p99_at_most_ms']:.1f} / {srv['concurrent']['p99_at_most_ms']:.1f}",
         "", ""),
        ("server CPU ms/request, both routes (1 / 8)",
         f"{report['server_cpu_ms_per_request']['sequential']:.2f} / "
         f"{report['server_cpu_ms_per_request']['concurrent']:.2f}", "", ""),
        ("HTTP statuses", json.dumps(all_statuses), "all 200",
         "ok" if ok_statuses else "ERRORS"),
    ]  # fmt: skip
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nbench/lead_api ({leads} leads, {TENANTS} tenants, {requests} requests per phase)")
    for name, value, target, ok in rows:
        print(f"  {name:<44} {value:>16}  {target:<12} {ok}")
    print(f"  machine: {os.cpu_count()} cores, load average {load}")
    print(f"  -> {out_dir / 'lead_api.json'}")


if __name__ == "__main__":
    main()
