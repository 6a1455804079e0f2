"""The whole pipeline as real processes for the chaos suite: fake SendGrid, `leadctl ingest`,
one or more `leadctl sequencer` workers (with the leads projection on the first) and
`leadctl outbound`, on a cluster with RF 3 / min ISR 2, a fresh topic prefix and a database of
their own. Every customer has the one whitelisted address and there is no frequency cap, so
each order's first touch point (email, due at once) is sent: one provider request per lead.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import SECRETS, free_port, secret_box, tz_at_local_hour
from bench.ingest.fixtures import BenchTenant
from leadctl.replay.kafka import KafkaView, pipeline_groups
from services.common.kafka.admin import ensure_topics
from services.common.topics import Topics

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "chaos.lead@example.com"
SERVICES = ("ingest", "sequencer", "outbound")


@dataclass
class Proc:
    name: str
    log: Path
    popen: subprocess.Popen[bytes]
    port: int

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            self.popen.send_signal(sig)

    def stop(self, timeout: float = 30.0) -> None:
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ---\n{text[-chars:]}"

    def ready(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/readyz"
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False


def _environment(
    *, kafka: str, db_url: str, prefix: str, partitions: int, replication: int
) -> dict[str, str]:
    foreign = ("SHOPMONKEY_", "SENDGRID_", "TWILIO_", "LEAD_EMAIL", "DEMO_MODE", "KAFKA_")
    base = {k: v for k, v in os.environ.items() if not k.startswith(foreign)}
    return (
        base
        | SECRETS
        | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka,
            "KAFKA_PARTITIONS": str(partitions),
            "KAFKA_REPLICATION_FACTOR": str(replication),
            "KAFKA_TOPIC_PREFIX": prefix,
            "DATABASE_URL": db_url,
            "LEAD_EMAIL_WHITELIST": EMAIL,
            "FREQUENCY_CAP_EMAIL": "0",
            "SENDGRID_API_KEY": "SG.chaos-fake-key",
            "SENDGRID_FROM_EMAIL": "shop@example.com",
            "SENDGRID_RECONCILE": "activity",  # a crash mid-send is reconciled, never resent blind
            "SENDGRID_ACTIVITY_SETTLE_SECONDS": "1",
            "SENDGRID_RATE_PER_SECOND": "5000",
            "SENDGRID_RATE_BURST": "5000",
            "PROVIDER_TIMEOUT_SECONDS": "4",
            "CLAIM_STALE_SECONDS": "10",
            "SWEEP_INTERVAL_SECONDS": "5",
            "OUTBOUND_GROUP_ID": f"{prefix}outbound",
            "PROJECTION_GROUP_ID": "lead-projection",
            "SEQUENCER_SESSION_TIMEOUT_SECONDS": "10",
            "WEBHOOK_HOST": "127.0.0.1",
            "SEQUENCER_HOST": "127.0.0.1",
            "OUTBOUND_HOST": "127.0.0.1",
            "TWILIO_STATUS_CALLBACK_URL": "",
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
        }
    )


@dataclass
class Pipeline:
    workdir: Path
    kafka: str
    db_url: str
    partitions: int = 12
    replication: int = 3
    prefix: str = field(default_factory=lambda: f"chaos{uuid.uuid4().hex[:8]}.")
    procs: dict[str, Proc] = field(default_factory=dict)
    tenants: list[tuple[str, str]] = field(default_factory=list)  # (tenant id, secret)
    env: dict[str, str] = field(default_factory=dict)
    sendgrid_port: int = 0

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.env = _environment(
            kafka=self.kafka,
            db_url=self.db_url,
            prefix=self.prefix,
            partitions=self.partitions,
            replication=self.replication,
        )
        self.sendgrid_port = free_port()
        self.env["SENDGRID_API_BASE_URL"] = f"http://127.0.0.1:{self.sendgrid_port}"

    @property
    def topics(self) -> Topics:
        return Topics(self.prefix)

    # set-up -----------------------------------------------------------------------------------
    def prepare(self, tenants: int = 200) -> None:
        """Topics (RF and min ISR from the settings) and `tenants` locations at mid-day."""
        ensure_topics(
            self.kafka,
            partitions=self.partitions,
            replication=self.replication,
            names=self.topics.with_dlqs(),
        )
        self.tenants = asyncio.run(_add_tenants(self.db_url, tenants))

    def start(self, name: str, kind: str | None = None, **extra: str) -> Proc:
        """Start `leadctl <kind>` as `name` (a second sequencer: its own port and data dir)."""
        kind = kind or name
        port = self.sendgrid_port if kind == "sendgrid" else free_port()
        env = self.env | {
            "WEBHOOK_PORT": str(port),
            "SEQUENCER_PORT": str(port),
            "OUTBOUND_PORT": str(port),
            "ADMIN_PORT": str(free_port()),  # ingest's operator listener
            "SEQUENCER_DATA_DIR": str(self.workdir / f"data-{name}"),
            **extra,
        }
        argv = ["simulate", "sendgrid", "--port", str(port)] if kind == "sendgrid" else [kind]
        log = self.workdir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "leadctl.main", *argv],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[name] = Proc(name, log, popen, port)
        return self.procs[name]

    def start_all(self, sequencers: int = 1) -> None:
        self.start("sendgrid")
        self.start("ingest")
        self.start("sequencer")
        for n in range(2, sequencers + 1):
            self.start(f"sequencer-{n}", "sequencer", SEQUENCER_PROJECTION="false")
        self.start("outbound")
        self.wait(lambda: all(p.ready() for p in self.services()), 180, "every service ready")
        self.wait(lambda: self._answers_sendgrid(), 30, "the fake SendGrid")

    def services(self) -> list[Proc]:
        return [p for n, p in self.procs.items() if n != "sendgrid"]

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop(20)

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.procs.values())

    def wait(self, predicate: Any, timeout: float, what: str) -> None:
        """Until `predicate()`; a service that exits meanwhile fails the wait at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            dead = [p for p in self.services() if not p.alive()]
            if dead:
                raise RuntimeError(f"{dead[0].name} exited waiting for {what}\n{dead[0].tail()}")
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}\n{self.tails()}")

    # observations -----------------------------------------------------------------------------
    def _answers_sendgrid(self) -> bool:
        try:
            self.provider_requests()
            return True
        except OSError:
            return False

    def provider_requests(self) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.sendgrid_port}/__requests"
        with urllib.request.urlopen(url, timeout=30) as r:
            return list(json.load(r)["requests"])

    def caught_up(self) -> bool:
        """Every group of the pipeline committed the end of every topic it reads."""
        wanted = pipeline_groups(
            self.topics,
            sequencer=f"{self.prefix}lead-sequencer",
            outbound=f"{self.prefix}outbound",
            projection=f"{self.prefix}lead-projection",
        )
        view = KafkaView(self.kafka)
        try:
            return all(view.caught_up(group, names) for group, names in wanted.items())
        except Exception:  # a broker down mid-scenario: not caught up (asked again)
            return False
        finally:
            view.close()


async def _add_tenants(db_url: str, count: int) -> list[BenchTenant]:
    """`count` locations, each of its own company (the webhook secret is the company's)."""
    from services.common.db.companies import add_company
    from services.common.db.engine import async_engine
    from services.common.db.tenants import add_tenant

    engine = async_engine("postgresql+psycopg://" + db_url.split("://", 1)[1], pool_size=1)
    zone = tz_at_local_hour(12)  # every send window open for the run
    out = []
    try:
        async with engine.begin() as conn:
            for i in range(count):
                company = await add_company(
                    conn,
                    box=secret_box(),
                    company_id=f"co_chaos_{uuid.uuid4().hex[:8]}",
                    name=f"Chaos {i}",
                )
                location_id = f"loc_chaos_{uuid.uuid4().hex[:8]}"
                tenant, _ = await add_tenant(
                    conn,
                    name=f"Chaos location {i}",
                    company_id=company.id,
                    location_id=location_id,
                    timezone=zone,
                    postal_address="1 Main St, Springfield, IL 62701",
                )
                assert company.webhook_secret is not None
                out.append(
                    BenchTenant(str(tenant.id), company.id, location_id, company.webhook_secret)
                )
    finally:
        await engine.dispose()
    return out
