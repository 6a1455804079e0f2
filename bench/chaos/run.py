"""The chaos suite (`make chaos`): the whole pipeline on a private 3-node Kafka cluster (RF 3,
min ISR 2) and a private PostgreSQL cluster, under steady load (signed webhooks at 200/s through
ingest, sequencer, outbound to the fake SendGrid), one fault at a time (scenarios.py). A
scenario passes with 0 lost webhooks, 0 lost leads and 0 duplicate provider requests
(figures.py); its figures go to .local/bench/chaos.json (merged per scenario).

    uv run python bench/chaos/run.py                       # every scenario (~25 min)
    uv run python bench/chaos/run.py --scenarios a,d --quick

Never touches the shared broker or PostgreSQL: the cluster lives in .local/chaos/kafka on free
ports, and PostgreSQL is CHAOS_PG_CLUSTER (default 15/chaos on :5442, created when missing).
Every JVM started here is stopped at the end (--keep-cluster leaves the cluster running).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.chaos import figures  # noqa: E402
from bench.chaos.cluster import LocalCluster, free_port_base  # noqa: E402
from bench.chaos.load import WebhookLoad  # noqa: E402
from bench.chaos.pipeline import EMAIL, Pipeline  # noqa: E402
from bench.chaos.postgres import PrivatePostgres  # noqa: E402
from bench.chaos.scenarios import SCENARIOS, Scenario, World  # noqa: E402
from bench.common import delete_topics_with_prefix  # noqa: E402

OUT = ROOT / ".local" / "bench" / "chaos.json"
DATABASE = "lo_chaos"


@dataclass(frozen=True)
class Timing:
    """Seconds of load: warm-up (not measured), baseline (the p99 before the fault), and
    after the fault is injected."""

    rate: float = 200.0
    warmup: float = 10.0
    baseline: float = 20.0
    after: float = 60.0
    drain: float = 300.0

    @property
    def fault_offset(self) -> float:
        return self.warmup + self.baseline


QUICK = Timing(rate=50.0, warmup=3.0, baseline=7.0, after=20.0, drain=180.0)


def passed(result: dict[str, Any]) -> bool:
    return (
        result["lost_webhooks"] == 0
        and result["lost_leads"] == 0
        and result["duplicate_sends"] == 0
        and result["webhooks_never_2xx"] == 0
        and result["leads_without_send"] == 0
    )


async def _load_with_fault(
    world: World, scenario: Scenario, load: WebhookLoad, timing: Timing
) -> tuple[float, float, dict[str, float]]:
    start = time.monotonic()
    seconds = timing.fault_offset + timing.after
    running = asyncio.create_task(load.run(timing.rate, seconds, at_start=start))
    await asyncio.sleep(timing.warmup)
    since = time.time()
    await asyncio.sleep(start + timing.fault_offset - time.monotonic())
    fault_at = time.time()
    fault = await scenario.fault(world)
    await running
    return fault_at, since, fault


def drain(pipeline: Pipeline, expected: int, timeout: float) -> float:
    """Wait until every group caught up and the provider saw a request per lead (or nothing
    moved for 30 s); returns the seconds it took."""
    started = time.monotonic()
    last, still = -1, time.monotonic()
    while time.monotonic() - started < timeout:
        sends = len({r["seq"] for r in pipeline.provider_requests() if r["method"] == "POST"})
        if sends != last:
            last, still = sends, time.monotonic()
        if pipeline.caught_up() and (sends >= expected or time.monotonic() - still > 30):
            return time.monotonic() - started
        time.sleep(1.0)
    return time.monotonic() - started


def run_scenario(
    scenario: Scenario,
    *,
    cluster: LocalCluster,
    db_url: str,
    workdir: Path,
    postgres: PrivatePostgres | None = None,
    timing: Timing = Timing(),
    tenants: int = 200,
) -> dict[str, Any]:
    """Run one scenario on a fresh topic prefix and return its figures (`passed` included)."""
    cluster.wait_fully_replicated()
    pipeline = Pipeline(workdir / scenario.key, cluster.bootstrap, db_url)
    world = World(cluster, pipeline, postgres)
    try:
        pipeline.prepare(tenants)
        pipeline.start_all(sequencers=scenario.sequencers)
        load = WebhookLoad(
            f"http://127.0.0.1:{pipeline.procs['ingest'].port}", pipeline.tenants, EMAIL
        )
        fault_at, since, fault = asyncio.run(_load_with_fault(world, scenario, load, timing))
        ok = sum(1 for h in load.sent if h.ok_at is not None)
        drained = drain(pipeline, ok, timing.drain)
        result = figures.count(pipeline, load.sent, load.answered_503, fault_at, since)
        result |= {
            "scenario": scenario.key,
            "title": scenario.title,
            "rate_per_second": timing.rate,
            "load_seconds": timing.fault_offset + timing.after,
            "fault": fault,
            "drain_seconds": round(drained, 1),
            "services_died": [
                p.name for p in pipeline.services() if not p.alive() and p.name != "sequencer-2"
            ],
        }
        result["passed"] = passed(result)
        if not result["passed"]:
            result["logs"] = pipeline.tails()
        return result
    finally:
        pipeline.stop_all()
        delete_topics_with_prefix(cluster.bootstrap, pipeline.prefix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="e.g. a,d")
    parser.add_argument("--quick", action="store_true", help="50/s, 30 s of load per scenario")
    parser.add_argument("--rate", type=float, default=None, help="webhooks per second")
    parser.add_argument("--keep-cluster", action="store_true")
    args = parser.parse_args()
    keys = [k.strip() for k in args.scenarios.split(",") if k.strip()]
    unknown = [k for k in keys if k not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    timing = QUICK if args.quick else Timing()
    if args.rate:
        timing = Timing(args.rate, timing.warmup, timing.baseline, timing.after, timing.drain)

    postgres = PrivatePostgres.from_env()
    db_url = postgres.up(DATABASE)
    state = ROOT / ".local" / "chaos"
    stale = LocalCluster(state / "kafka", 0)
    stale.down()  # a cluster an interrupted run left behind
    shutil.rmtree(state, ignore_errors=True)  # every run on a new cluster and new data dirs
    cluster = LocalCluster(
        state / "kafka", free_port_base(), heap="-Xmx512m -Xms256m", quick_jit=False
    )
    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    results.setdefault("scenarios", {})
    try:
        print(f"chaos: starting a 3-node cluster at {cluster.bootstrap} ...", flush=True)
        cluster.up()
        for key in keys:
            scenario = SCENARIOS[key]
            print(f"chaos: ({key}) {scenario.title} ...", flush=True)
            result = run_scenario(
                scenario,
                cluster=cluster,
                db_url=db_url,
                workdir=state / "runs",
                postgres=postgres,
                timing=timing,
            )
            result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            results["scenarios"][key] = result
            shown = {k: v for k, v in result.items() if k != "logs"}
            print(json.dumps(shown, indent=2), flush=True)
    finally:
        if not args.keep_cluster:
            cluster.down()
        results["machine"] = {"python": platform.python_version(), "cpus": _cpus()}
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(results, indent=2))
        print(f"chaos: figures in {OUT.relative_to(ROOT)}")
    failed = [k for k in keys if not results["scenarios"].get(k, {}).get("passed")]
    if failed:
        sys.exit(f"chaos: scenario(s) {', '.join(failed)} lost or duplicated something")


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


if __name__ == "__main__":
    main()
