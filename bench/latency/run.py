"""Where a new order's first message spends its time, webhook to SendGrid, end to end.

Signed Shopmonkey webhooks are posted at `--rate` orders/s (distinct whitelisted customers) to
ingest, the sequencer and outbound run as deployed (one process each, `leadctl ...`), and the
fake SendGrid records when each request arrives. Each outcome's `hop.*` headers
(services/common/domain/hops.py) give the hops in between; the bench prints p50/p99/max of
every segment and of the whole way.

It also prints the CPU each process used per measured order (the three services, the fake
SendGrid, the bench's own client, Kafka and PostgreSQL, from /proc), and how many of the
machine's cores the whole took: at 200 orders/s on two cores, whether the pipeline fits at all.

`--baseline DIR` runs the same load first against the code in DIR (e.g. `git worktree add
/tmp/base <commit>`), then against this checkout, in the same run: on a shared machine only the
ratio of the two means anything.

    uv run --frozen python bench/latency/run.py --rate 5 --orders 100
    uv run --frozen python bench/latency/run.py --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from confluent_kafka import Consumer  # noqa: E402

from bench.common import (  # noqa: E402
    KAFKA,
    SECRETS,
    cpu_seconds,
    delete_topics_with_prefix,
    free_port,
    migrated_database,
    tz_at_local_hour,
)
from bench.ingest.fixtures import add_tenants, webhook_requests  # noqa: E402
from fakes._recorder import FakeAdmin  # noqa: E402
from schemas.events import TouchPointOutcome  # noqa: E402
from services.common.domain import hops  # noqa: E402
from services.common.event_loop import use_fast_event_loop  # noqa: E402
from services.common.kafka.admin import ensure_topics  # noqa: E402
from services.common.topics import Topics  # noqa: E402

BENCH_DB = "lo_bench_latency"
#: The state every run starts from (`seeded_database`).
SEED_DB = "lo_bench_latency_seed"
#: Leads of the past (each with one send and one consent) in the seed.
SEED_ROWS = 100_000
#: A past: a Shopmonkey company of 200 locations, since closed (inactive: nothing routes to
#: them), and SEED_ROWS leads, sends and consents of theirs.
SEED_SQL = (
    """
    INSERT INTO shopmonkey_companies (id, name, active) VALUES ('past', 'Past Auto', false)
    """,
    """
    INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id, active)
    SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'Past ' || g,
        'past', 'past-' || g, false
    FROM generate_series(0, 199) AS g
    """,
    """
    INSERT INTO leads (lead_id, tenant_id, state, source, version, customer_id, first_name,
        email, phone, created_at, updated_at)
    SELECT gen_random_uuid(),
        ('00000000-0000-4000-8000-' || lpad(to_hex(g %% 200), 12, '0'))::uuid,
        'contacted', 'shopmonkey', 2, 'past-' || g, 'Past', 'past.' || g || '@example.org',
        '+1555' || lpad((g %% 10000000)::text, 7, '0'),
        now() - make_interval(secs => g * 60), now() - make_interval(secs => g * 60)
    FROM generate_series(1, %(rows)s) AS g
    """,
    """
    INSERT INTO job_executions (command_id, tenant_id, lead_id, step_index, channel, template,
        recipient, status, reason, provider, provider_message_id, attempts, claimed_at,
        decided_at)
    SELECT gen_random_uuid(), tenant_id, lead_id, 0, 'email', 'nurture_email_welcome', email,
        'sent', 'accepted', 'sendgrid', md5(lead_id::text), 1, created_at, created_at
    FROM leads
    """,
    """
    INSERT INTO source_consent (company_id, channel, contact, source, customer_id, opted_in,
        marketing_opt_in, changed_at, event_key)
    SELECT 'past', 'email', email, 'shopmonkey', customer_id, true, true, created_at,
        'seed:' || customer_id
    FROM leads
    """,
)
PARTITIONS = 4
#: The way of a first message, from the bench's POST to the provider's answer.
POSTED, PROVIDER_REQUEST = "posted", "provider_request"
POINTS = (POSTED, *hops.HOPS[:5], PROVIDER_REQUEST, hops.PROVIDER_ANSWERED)
#: The processes the bench starts, in order.
SERVICES = ("sendgrid", "ingest", "sequencer", "outbound")


#: A process group's pseudo-pid for the CPU of its processes that ended (PostgreSQL backends
#: that closed: the postmaster's reaped children).
REAPED = -1


def infra_pids() -> dict[str, list[int]]:
    """Kafka's and PostgreSQL's processes now (every backend: the ledger's claims run there),
    the postmaster's pid negated (its reaped children count)."""
    found: dict[str, list[int]] = {"kafka": [], "postgres": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0, _, rest = (entry / "cmdline").read_bytes().partition(b"\0")
        except OSError:
            continue
        if b"kafka.Kafka" in rest:
            found["kafka"].append(int(entry.name))
        elif argv0.startswith(b"postgres:"):
            found["postgres"].append(int(entry.name))
        elif argv0.endswith(b"/postgres"):  # the postmaster
            found["postgres"] += [int(entry.name), -int(entry.name)]
    return found


def cpu_snapshot(services: dict[str, int]) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process (pid → seconds) per name: the services, Kafka and
    PostgreSQL (listed anew: backends come and go), and the bench itself (its client)."""
    own = os.times()
    out: dict[str, dict[int, float]] = {"bench client": {0: own.user + own.system}}
    for name, pids in ({n: [p] for n, p in services.items()} | infra_pids()).items():
        out[name] = {}
        for pid in pids:
            seconds = cpu_seconds(abs(pid), reaped=pid < 0)
            if seconds is not None:
                out[name][REAPED if pid < 0 else pid] = seconds
    return out


def cpu_used(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds per name between two snapshots. A process that started meanwhile counts
    from zero; one that ended counts through its parent's reaped children (less what it had
    used before), where the group has that (PostgreSQL); elsewhere its share is lost."""
    used = {}
    for name, now in after.items():
        then = before.get(name, {})
        seconds = sum(value - then.get(pid, 0.0) for pid, value in now.items())
        if REAPED in now:
            seconds -= sum(value for pid, value in then.items() if pid not in now)
        used[name] = seconds
    return used


#: Orders posted at 5/s before the measured ones.
WARM_ORDERS = 5
#: Linux's limit on one environment variable, "NAME=value" (MAX_ARG_STRLEN, 32 pages).
MAX_ENV_VALUE = 131_072


def customer_emails(count: int) -> list[str]:
    """The distinct whitelisted addresses of the run's customers, one an order."""
    return [f"jane.{i}@example.net" for i in range(count)]


def start(code: Path, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "leadctl.main", *argv],
            cwd=code,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def wait_ok(url: str, proc: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited ({proc.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 (loopback)
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready")


async def post_all(base: str, requests: list[bytes], rate: float) -> list[int]:
    """Posts each raw request at `rate`/s on its own schedule; returns when each was posted.

    The requests go as they were built (bench/ingest/fixtures.py: signed, HTTP/1.1 with
    Content-Length), written as they are over kept-alive connections, one request at a time
    on each (a connection is opened when none is free). An HTTP client library would parse
    them back into headers and build them again: at 200/s that alone cost this process ~0.4 ms
    of the machine's CPU an order, taken from the services under test. Only the answer's
    status line and body are read back."""
    posted = [0] * len(requests)
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    start = time.monotonic()

    async def one(i: int, raw: bytes) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
        posted[i] = hops.now_us()
        if idle:
            reader, writer = idle.pop()
        else:
            reader, writer = await asyncio.open_connection(host, port)
            opened.append(writer)
        writer.write(raw)
        status_line = await reader.readline()
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
            elif name.strip().lower() == "connection" and "close" in value.lower():
                close = True
        body = await reader.readexactly(length)
        status = int(status_line.split(b" ", 2)[1]) if status_line else 0
        if status != 200:
            raise RuntimeError(f"webhook {i}: {status} {body.decode(errors='replace')}")
        if close:
            writer.close()
        else:
            idle.append((reader, writer))

    try:
        await asyncio.gather(*(one(i, raw) for i, raw in enumerate(requests)))
    finally:
        for writer in opened:
            writer.close()
    return posted


def outcome_hops(topic: str, want: int, timeout: float = 30.0) -> dict[str, dict[str, int]]:
    """command_id → hops of the `want` traced outcomes on `topic`."""
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"bench-lat-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    got: dict[str, dict[str, int]] = {}
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=0.5):
                if msg.error() is None and msg.headers():
                    outcome = TouchPointOutcome.from_bytes(msg.value())
                    got[str(outcome.command_id)] = hops.Trace.of(msg.headers()).hops
    finally:
        consumer.close()
    return got


def us(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


Segments = dict[str, list[float]]
#: CPU seconds per process over the measured orders, and the wall seconds they took.
Cpu = tuple[dict[str, float], float, float]


def stolen_seconds() -> float:
    """CPU seconds the hypervisor has taken from this machine's cores so far (/proc/stat's
    steal): a run whose window had much of it ran on less than two cores."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def seeded_database() -> str:
    """A new copy of the seed for one run: every run, of either checkout, starts from the same
    state. Left to itself the bench's database grew by each run's rows; and one started empty
    is no better: its first statements are planned for empty tables (no statistics until
    autovacuum's next ANALYZE, a minute away), the cached plans scan whole tables, and
    PostgreSQL's CPU an order grew through the run (3.1 ms an order against 1.7: the ledger's,
    consent's and leads' statements read thousands of rows each by the end, seen in
    pg_stat_user_tables). The seed holds a past (SEED_SQL), analyzed: the planner sees tables
    in use. It is built once and kept (SEED_DB); drop it to build it anew."""
    import psycopg

    seed = migrated_database(SEED_DB)
    with psycopg.connect(seed, autocommit=True) as conn:
        seeded = conn.execute("SELECT 1 FROM shopmonkey_companies WHERE id = 'past'").fetchone()
        if seeded is None:
            for statement in SEED_SQL:
                conn.execute(statement, {"rows": SEED_ROWS})  # type: ignore[arg-type]
            conn.execute("ANALYZE")
    return migrated_database(BENCH_DB, template=SEED_DB, fresh=True)


def run_stack(code: Path, args: Any, logs: Path) -> tuple[Segments, Cpu]:
    """One deployment of the code in `code` under the load; the milliseconds of each segment
    and the CPU each process used meanwhile."""
    topics = Topics(f"lat{uuid.uuid4().hex[:6]}.")
    db = seeded_database()
    tenants = add_tenants(
        db, args.tenants, per_company=args.per_company, timezone=tz_at_local_hour(12)
    )
    warm, n = WARM_ORDERS, args.orders
    requests = webhook_requests(tenants, warm + n)
    emails = customer_emails(warm + n)
    ensure_topics(KAFKA, partitions=PARTITIONS, names=topics.with_dlqs())
    sg, ingest, admin, seq, out = (free_port() for _ in range(5))
    env = (
        dict(os.environ)
        | SECRETS
        | {
            "DATABASE_URL": db,
            "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
            "KAFKA_TOPIC_PREFIX": topics.prefix,
            "KAFKA_PARTITIONS": str(PARTITIONS),
            "LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
            "WEBHOOK_HOST": "127.0.0.1",
            "WEBHOOK_PORT": str(ingest),
            "ADMIN_PORT": str(admin),
            "SEQUENCER_HOST": "127.0.0.1",
            "SEQUENCER_PORT": str(seq),
            "SEQUENCER_DATA_DIR": tempfile.mkdtemp(prefix="bench-lat-"),
            "OUTBOUND_HOST": "127.0.0.1",
            "OUTBOUND_PORT": str(out),
            "OUTBOUND_GROUP_ID": f"{topics.prefix}outbound",
            "SENDGRID_API_KEY": "SG.bench",
            "SENDGRID_API_BASE_URL": f"http://127.0.0.1:{sg}",
            "LEAD_EMAIL_WHITELIST": ",".join(emails),
            # the sender's pacing (default 50/s, a guess at SendGrid's limit, reference §1.6)
            # is a deliberate wait, not the pipeline's: at 200 orders/s it alone queues every
            # message for seconds. Set as an operator whose SendGrid plan allows it would;
            # `--sendgrid-rate` measures it as shipped.
            "SENDGRID_RATE_PER_SECOND": str(args.sendgrid_rate),
            "SENDGRID_RATE_BURST": str(max(1, int(args.sendgrid_rate))),
        }
    )
    with ExitStack() as stack:
        # last, once every service has stopped: a running one would create them again
        stack.callback(delete_topics_with_prefix, KAFKA, topics.prefix)
        procs = []
        for name, argv in zip(
            SERVICES,
            (["simulate", "sendgrid", "--port", str(sg)], ["ingest"], ["sequencer"], ["outbound"]),
            strict=True,
        ):
            # the fake is the bench's, not the code's under test: the same on both sides
            proc = start(
                ROOT if name == "sendgrid" else code, argv, env, logs / f"latency-{name}.log"
            )
            procs.append(proc)
            stack.callback(proc.wait, 30)
            stack.callback(proc.terminate)
        wait_ok(f"http://127.0.0.1:{admin}/healthz", procs[1])
        wait_ok(f"http://127.0.0.1:{seq}/readyz", procs[2])
        wait_ok(f"http://127.0.0.1:{out}/readyz", procs[3])
        fake = FakeAdmin(f"http://127.0.0.1:{sg}", timeout=30)
        base = f"http://127.0.0.1:{ingest}"
        asyncio.run(post_all(base, requests[:warm], 5.0))  # assignments, connections, caches
        wait_for(lambda: fake.accepted(MAIL_SEND) >= warm, 40, "the warm-up's messages")
        services = {name: p.pid for name, p in zip(SERVICES, procs, strict=True)}
        cpu_before, wall_before = cpu_snapshot(services), time.monotonic()
        stolen_before = stolen_seconds()
        posted = asyncio.run(post_all(base, requests[warm:], args.rate))
        # a count while the load runs: every record's payload, a few MB of JSON a look by the
        # end, cost the fake and this client more CPU than the fake's answers (and in bursts)
        wait_for(lambda: fake.accepted(MAIL_SEND) >= warm + n, 180, "every message")
        used = cpu_used(cpu_before, cpu_snapshot(services))
        wall = time.monotonic() - wall_before
        stolen = stolen_seconds() - stolen_before
        arrivals = {
            r["payload"]["custom_args"]["command_id"]: (
                r["payload"]["personalizations"][0]["to"][0]["email"],
                us(r["at"]),
            )
            for r in sent(fake)
        }
        traced = outcome_hops(topics.touchpoint_outcomes, warm + n)
    index = {email: i - warm for i, email in enumerate(emails)}
    segments: dict[str, list[float]] = {}
    # in posting order: each segment's n-th value is the n-th order's (`report_timeline`)
    for command_id, (email, arrived) in sorted(arrivals.items(), key=lambda kv: index[kv[1][0]]):
        i = index[email]
        if i < 0:
            continue
        segments.setdefault("POST → provider request (whole way)", []).append(
            (arrived - posted[i]) / 1000
        )
        if command_id not in traced:  # code without hop headers: the whole way only
            continue
        at = traced[command_id] | {POSTED: posted[i], PROVIDER_REQUEST: arrived}
        for a, b in pairwise(POINTS):
            segments.setdefault(f"{a} → {b}", []).append((at[b] - at[a]) / 1000)
        segments.setdefault("webhook → provider request", []).append(
            (arrived - at[hops.WEBHOOK_RECEIVED]) / 1000
        )
    return segments, (used, wall, stolen)


MAIL_SEND = "/v3/mail/send"


def sent(fake: FakeAdmin) -> list[dict[str, Any]]:
    return [r for r in fake.requests() if r["path"] == MAIL_SEND and r["accepted"]]


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.2)


def report(label: str, segments: dict[str, list[float]]) -> None:
    print(f"\n{label}  (ms; Kafka's hop times are its CreateTime, 1 ms resolution)")
    print(f"{'segment':46} {'n':>4} {'p50':>8} {'p99':>8} {'max':>8} {'mean':>8}")
    for name, values in segments.items():
        print(
            f"{name:46} {len(values):>4} {pct(values, 0.5):>8.1f} {pct(values, 0.99):>8.1f}"
            f" {max(values):>8.1f} {statistics.fmean(values):>8.1f}"
        )


def report_timeline(
    label: str, segments: dict[str, list[float]], rate: float, seconds: float | None = None
) -> None:
    """p50/max of each segment over each second of the load (at most 30 columns: longer runs
    get wider buckets), or over each `seconds` of its first 30 such spans (the step from the
    warm-up's rate to the load's, at a finer grain). A backlog (a start-up, a stall) shows as a
    run of high columns, and how long the pipeline took to drain it."""
    n = len(segments[WHOLE])
    per = max(1, round(rate * seconds)) if seconds else max(1, int(rate), -(-n // 30))
    shown = min(n, 30 * per)
    print(f"\n{label}: p50/max (ms) over each {per / rate:g} s of the load, in posting order")
    for name, values in segments.items():
        if len(values) != n:  # untraced orders: no per-order order to keep
            continue
        cells = (
            f"{statistics.median(chunk):.0f}/{max(chunk):.0f}"
            for chunk in (values[i : i + per] for i in range(0, shown, per))
        )
        print(f"{name[:44]:44} " + " ".join(f"{c:>9}" for c in cells))


def report_cpu(label: str, orders: int, cpu: Cpu) -> None:
    used, wall, stolen = cpu
    per = cpu_per_order(cpu, orders)
    print(f"\n{label}: CPU per measured order (ms), over {wall:.1f} s of wall time")
    for name, seconds in sorted(used.items(), key=lambda kv: -kv[1]):
        print(f"  {name:14} {per[name]:7.2f} ms  ({seconds / wall:.2f} cores)")
    print(
        f"  {'all':14} {per['all']:7.2f} ms  ({sum(used.values()) / wall:.2f} cores of"
        f" {os.cpu_count()}; the window includes the wait for the last message)"
    )
    print(
        "  (Kafka and PostgreSQL: every broker and cluster process on this machine; the fake"
        " SendGrid and the client include the bench asking the fake for its count 5 times a"
        " second)"
    )
    print(
        f"  the hypervisor took {stolen / wall:.2f} cores meanwhile (steal): compare runs"
        " that had about as little"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
    parser.add_argument(
        "--sendgrid-rate",
        type=float,
        default=1000.0,
        help="SENDGRID_RATE_PER_SECOND of outbound (its default is 50: pacing, not latency)",
    )
    parser.add_argument("--orders", type=int, default=100, help="orders measured")
    parser.add_argument("--baseline", type=Path, help="a checkout of the code to compare with")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs of each checkout, alternating with the baseline's; prints the medians (and "
        "their ratios) instead of every table: one run's CPU varies by 10-20 %% here",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="also print each segment's p50/max over each second of the load (one run only)",
    )
    parser.add_argument(
        "--timeline-seconds",
        type=float,
        help="a timeline over spans this long (e.g. 0.1), the first 30 of the load: the step "
        "from the warm-up's 5 orders/s to the load's rate (one run only)",
    )
    parser.add_argument(
        "--tenants",
        type=int,
        default=50,
        help="locations the orders are spread over (outbound handles one tenant's commands "
        "in order, different tenants' at once)",
    )
    parser.add_argument(
        "--per-company",
        type=int,
        default=5,
        help="locations of each Shopmonkey company: a new order of a customer is also told to "
        "each other location of its company (one more order event each for the sequencer)",
    )
    args = parser.parse_args()
    if args.per_company < 1:
        parser.error("--per-company must be at least 1")
    whitelist = len("LEAD_EMAIL_WHITELIST=" + ",".join(customer_emails(WARM_ORDERS + args.orders)))
    if whitelist >= MAX_ENV_VALUE:  # Popen would fail with "Argument list too long"
        parser.error(
            f"--orders {args.orders}: their {args.orders:,} whitelisted addresses are one "
            f"environment variable of {whitelist:,} bytes, over Linux's {MAX_ENV_VALUE:,} a "
            "variable; measure fewer orders (--repeat runs more)"
        )
    use_fast_event_loop()  # the client, as the services: its CPU shares the machine's two cores
    logs = ROOT / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    runs = [("this checkout", ROOT)]
    if args.baseline:
        runs.insert(0, (f"baseline {args.baseline}", args.baseline.resolve()))
    print(
        f"{args.orders} orders at {args.rate:g}/s over {args.tenants} locations"
        f" ({args.per_company} a company), one process per service, {os.cpu_count()} cores"
        " (shared: compare the runs, not the figures)"
    )
    results: list[tuple[str, tuple[dict[str, list[float]], Cpu]]] = []
    for i in range(args.repeat):
        for label, code in runs if i % 2 == 0 else runs[::-1]:  # ABBA: no side always first
            results.append((label, run_stack(code, args, logs)))
            if args.repeat > 1:
                print(
                    f"run {i + 1}/{args.repeat}, {summary_line(label, results[-1][1], args.orders)}"
                )
    if args.repeat == 1:
        for label, (segments, cpu) in results:
            report(label, segments)
            if args.timeline or args.timeline_seconds:
                report_timeline(label, segments, args.rate, args.timeline_seconds)
            report_cpu(label, args.orders, cpu)
    else:
        report_medians(results, args.orders)


WHOLE = "POST → provider request (whole way)"


def cpu_per_order(cpu: Cpu, orders: int) -> dict[str, float]:
    """ms of CPU per measured order, per process and `all`."""
    used = cpu[0]
    per = {name: seconds / orders * 1000 for name, seconds in used.items()}
    per["all"] = sum(used.values()) / orders * 1000
    return per


def summary_line(label: str, result: tuple[dict[str, list[float]], Cpu], orders: int) -> str:
    segments, cpu = result
    whole = segments[WHOLE]
    per = cpu_per_order(cpu, orders)
    return (
        f"{label}: p50 {pct(whole, 0.5):.1f} / p99 {pct(whole, 0.99):.1f} ms, CPU ms an order "
        + " ".join(f"{name} {ms:.2f}" for name, ms in sorted(per.items(), key=lambda kv: -kv[1]))
        + f", steal {cpu[2] / cpu[1]:.2f} cores"
    )


def report_medians(
    results: list[tuple[str, tuple[dict[str, list[float]], Cpu]]], orders: int
) -> None:
    """Per checkout, the median over its runs of the whole way's p50/p99 and of each process's
    CPU per order; with a baseline, this checkout's medians over the baseline's."""
    sides: dict[str, list[dict[str, float]]] = {}
    for label, (segments, cpu) in results:
        whole = segments[WHOLE]
        figures = {"p50 ms": pct(whole, 0.5), "p99 ms": pct(whole, 0.99)}
        figures |= {f"cpu {name}": ms for name, ms in cpu_per_order(cpu, orders).items()}
        sides.setdefault(label, []).append(figures)
    medians = {
        label: {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        for label, runs in sides.items()
    }
    labels = list(medians)
    print(f"\nmedians over {len(sides[labels[0]])} runs each (CPU: ms an order)")
    header = f"{'':16}" + "".join(f"{label[-24:]:>26}" for label in labels)
    print(header + (f"{'ratio':>8}" if len(labels) == 2 else ""))
    for key in medians[labels[-1]]:
        values = [medians[label].get(key) for label in labels]
        row = f"{key:16}" + "".join(
            f"{v:>26.2f}" if v is not None else f"{'-':>26}" for v in values
        )
        if len(labels) == 2 and values[0] and values[1] is not None:
            row += f"{values[1] / values[0]:>8.2f}"
        print(row)


if __name__ == "__main__":
    main()
