"""The whole system as real processes for the replay e2e tests: fake SendGrid and Twilio, the
Shopmonkey simulator (20 tenants, signed webhooks), `leadctl ingest`, `leadctl poller --once`,
`leadctl sequencer` (with the leads projection) and `leadctl outbound`, on this test's topics,
groups and private database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from leadctl.replay.kafka import KafkaView, pipeline_groups
from services.common.topics import Topics
from tests.conftest import ROOT, free_port

DEMO = "demo@example.com"
#: the phone the simulator gives every demo customer (`--demo-phone`): a mobile opted in to
#: texts with no channel preferred, so the gate's consent rules let the demo's email go
DEMO_PHONE = "+12025550142"


@dataclass
class Proc:
    name: str
    log: Path
    popen: subprocess.Popen[bytes]
    stopped: bool = False

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        self.stopped = True
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, n: int = 4000) -> str:
        return f"--- {self.name} ---\n{self.text()[-n:]}"


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    topics: Topics
    db_url: str
    bootstrap: str
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    runs: int = 0

    @property
    def prefix(self) -> str:
        return self.env["KAFKA_TOPIC_PREFIX"]

    def start(self, name: str, *args: str, kind: str | None = None) -> Proc:
        self.runs += 1
        log = self.tmp / f"{name}-{self.runs}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                [sys.executable, "-m", "leadctl.main", *(args or (kind or name,))],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = Proc(name, log, popen)
        self.procs[name] = proc
        return proc

    def simulate_shopmonkey(self, state: Path, *options: str) -> dict[str, Any]:
        """The Shopmonkey simulator on its port (a random seed, its companies provisioned as
        tenants) with `options`; returns its state file once it serves."""
        self.start(
            "shopmonkey",
            "simulate",
            "shopmonkey",
            "--port",
            str(self.ports["shopmonkey"]),
            "--seed",
            str(uuid.uuid4().int % 10**6),
            "--provision",
            "--state-file",
            str(state),
            *options,
        )
        self.wait(state.exists, 60, "the simulator")
        return dict(json.loads(state.read_text()))

    def tails(self) -> str:
        return "\n".join(p.tail() for p in self.procs.values())

    def wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            for p in self.procs.values():
                if (
                    p.name in ("sequencer", "outbound", "ingest")
                    and not p.stopped
                    and not p.alive()
                ):
                    raise AssertionError(f"{p.name} died waiting for {what}\n{self.tails()}")
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}\n{self.tails()}")

    def healthy(self, port_name: str, path: str = "/healthz") -> bool:
        try:
            url = f"http://127.0.0.1:{self.ports[port_name]}{path}"
            with urllib.request.urlopen(url, timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    def requests_to(self, fake: str) -> list[dict[str, Any]]:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.ports[fake]}/__requests", timeout=5
        ) as r:
            doc = json.load(r)
        return list(doc if isinstance(doc, list) else doc.get("requests", []))

    # kafka ------------------------------------------------------------------------------------
    def caught_up(self) -> bool:
        """Every group has committed up to the end of every topic it reads."""
        wanted = pipeline_groups(
            self.topics,
            sequencer=f"{self.prefix}lead-sequencer",
            outbound=self.env["OUTBOUND_GROUP_ID"],
            projection=f"{self.prefix}{self.env['PROJECTION_GROUP_ID']}",
        )
        view = KafkaView(self.bootstrap)
        try:
            return all(view.caught_up(group, names) for group, names in wanted.items())
        finally:
            view.close()

    def quiesce(self, timeout: float = 300.0, stable: int = 4) -> None:
        """Caught up `stable` times in a row, a second apart (timers may still emit)."""
        streak = 0

        def check() -> bool:
            nonlocal streak
            streak = streak + 1 if self.caught_up() else 0
            return streak >= stable

        self.wait(check, timeout, "every consumer group to catch up")

    def delete_topics(self) -> None:
        """Every topic under this test's prefix (the broker has a file-descriptor budget)."""
        from services.common.kafka.admin import admin_client

        admin = admin_client(self.bootstrap)
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(self.prefix)]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                try:
                    future.result()
                except Exception as exc:  # best effort; the next run uses a new prefix
                    print(f"could not delete a topic: {exc}")

    def sequencer_active(self) -> bool:
        view = KafkaView(self.bootstrap)
        try:
            return view.group_state(f"{self.prefix}lead-sequencer").active
        finally:
            view.close()

    # database ---------------------------------------------------------------------------------
    def rows(self, sql: str, *args: object) -> list[dict[str, Any]]:
        with psycopg.connect(self.db_url) as conn, conn.cursor() as cur:
            cur.execute(sql, args)  # type: ignore[arg-type]
            names = [d.name for d in cur.description or []]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def leads(self) -> dict[str, dict[str, Any]]:
        return {str(r["lead_id"]): r for r in self.rows("SELECT * FROM leads ORDER BY lead_id")}


def stack_env(tmp: Path, service_env: dict[str, str], ports: dict[str, int]) -> dict[str, str]:
    prefix = service_env["KAFKA_TOPIC_PREFIX"]
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("SHOPMONKEY_", "SENDGRID_", "TWILIO_", "LEAD_EMAIL", "LEAD_PHONE", "DEMO_MODE")
        )
    }
    return (
        base
        | service_env
        | {
            "LEAD_EMAIL_WHITELIST": DEMO,
            "SENDGRID_API_KEY": "SG.fake-e2e-key",
            "SENDGRID_FROM_EMAIL": "shop@example.com",
            "SENDGRID_API_BASE_URL": f"http://127.0.0.1:{ports['sendgrid']}",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "fake-e2e-token",
            "TWILIO_PHONE_NUMBER": "+15005550006",
            "TWILIO_API_BASE_URL": f"http://127.0.0.1:{ports['twilio']}",
            "TWILIO_STATUS_CALLBACK_URL": "",
            "SHOPMONKEY_API_BASE_URL": f"http://127.0.0.1:{ports['shopmonkey']}/v3",
            "WEBHOOK_PORT": str(ports["ingest"]),
            "WEBHOOK_HOST": "127.0.0.1",
            "ADMIN_PORT": str(ports["ingest-admin"]),
            "POLLER_PORT": str(ports["poller"]),
            "SEQUENCER_PORT": str(ports["sequencer"]),
            "SEQUENCER_HOST": "127.0.0.1",
            "SEQUENCER_DATA_DIR": str(tmp / "sequencer-data"),
            "OUTBOUND_PORT": str(ports["outbound"]),
            "OUTBOUND_HOST": "127.0.0.1",
            "OUTBOUND_GROUP_ID": f"{prefix}outbound",
            "PROJECTION_GROUP_ID": "lead-projection",  # the sequencer prefixes it
            "TOUCHPOINT_TICK_SECONDS": "2",
            "REPLAY_POLL_SECONDS": "1",
            "POLL_INITIAL_LOOKBACK_SECONDS": str(26 * 3600),
            "LOG_LEVEL": "info",
        }
    )


def new_stack(
    tmp: Path, service_env: dict[str, str], topics: Topics, db_url: str, bootstrap: str
) -> Stack:
    ports = {
        n: free_port()
        for n in (
            "sendgrid",
            "twilio",
            "shopmonkey",
            "ingest",
            "ingest-admin",
            "poller",
            "sequencer",
            "outbound",
        )
    }
    return Stack(tmp, stack_env(tmp, service_env, ports), topics, db_url, bootstrap, ports)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    """Until `url` answers; fails at once with the log when `proc` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{url} died:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except (OSError, urllib.error.URLError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer:\n{log.read_text()[-3000:]}")
