"""`make run` from a fresh copy of the repository reaches "first touch point sent to the demo
address" with no other step, the dashboard shows it to the demo operator, and Ctrl-C stops
everything it started. The deployment secrets it needs are generated into `.env.local` (none is
in the environment here), and the services use them.

The copy holds exactly what a clone would (tracked and not-ignored files, no .venv, no .local),
so `make run` installs its own virtualenv there. Kafka and PostgreSQL are the ones `make test`
already runs (reused, as `make run` does); a private database, topic prefix and ports keep
this run apart from anything else on the machine.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from fakes._recorder import FakeAdmin
from leadctl.run.demo import DEMO_OPERATOR, DEMO_PHONES
from leadctl.secrets.local import read_env_file
from schemas.base import LeadIdKey, lead_id_for_order
from services.common.secret_box import SecretBox
from tests.conftest import BASE_DB_URL, ROOT, free_port, new_topic_prefix

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
BANNER = "first touch point sent to the demo address"


def fresh_copy(dest: Path) -> Path:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for raw in filter(None, files):
        rel = raw.decode()
        src = ROOT / rel
        if not src.is_file():
            continue  # deleted in the working tree
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
    return dest


class Output:
    """Collects a process's output lines in a thread; `wait_for` a line containing text."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        self._thread.start()

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._cond.wait(left)

    def tail(self, n: int = 80) -> str:
        with self._cond:
            return "\n".join(self.lines[-n:])


def signed_in_summary(admin: str, email: str, password: str) -> dict:  # type: ignore[type-arg]
    """The dashboard's JSON as the operator sees it after signing in with the form."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    form = urllib.parse.urlencode({"email": email, "password": password}).encode()
    with opener.open(f"{admin}/dashboard/sign-in", data=form, timeout=10) as r:
        assert r.status == 200 and r.url.endswith("/dashboard/"), r.url  # after the 303
    with opener.open(f"{admin}/dashboard/api/summary", timeout=10) as r:
        return json.load(r)  # type: ignore[no-any-return]


@pytest.fixture
def run_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    db = f"lo_e2e_run_{uuid.uuid4().hex[:8]}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("SHOPMONKEY_", "SENDGRID_", "TWILIO_", "LEAD_EMAIL", "LEAD_PHONE", "VIRTUAL_ENV")
        )
        and k not in ("ID_SECRET", "LINK_SIGNING_KEYS", "SECRETS_ENCRYPTION_KEYS")
        and not k.startswith("ADMIN_")
    }
    env |= {
        "DATABASE_URL": BASE_DB_URL.rsplit("/", 1)[0] + "/" + db,
        "KAFKA_TOPIC_PREFIX": new_topic_prefix("run"),
        "KAFKA_PARTITIONS": "4",
        "WEBHOOK_PORT": str(free_port()),
        "ADMIN_PORT": str(free_port()),
        "SHOPMONKEY_SIM_PORT": str(free_port()),
        "FAKE_SENDGRID_PORT": str(free_port()),
        "FAKE_TWILIO_PORT": str(free_port()),
        "POLLER_PORT": str(free_port()),
        "SEQUENCER_PORT": str(free_port()),
        "OUTBOUND_PORT": str(free_port()),
        "POLL_INTERVAL_SECONDS": "5",
        "LOG_LEVEL": "INFO",
    }
    yield env
    import psycopg

    with psycopg.connect(BASE_DB_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        for name in (db, f"{db}_test"):  # infra/postgres.sh makes <db>_test beside <db>
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_make_run_reaches_first_touch_point_and_stops_cleanly(
    tmp_path: Path, run_env: dict[str, str]
) -> None:
    repo = fresh_copy(tmp_path / "clone")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=repo,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    out = Output(proc)
    try:
        line = out.wait_for(BANNER, timeout=300)
        assert line is not None, f"no first touch point; output:\n{out.tail()}"
        elapsed = time.monotonic() - started
        print(f"make run → first touch point: {elapsed:.1f} s (cold: fresh venv)")

        generated = read_env_file(repo / ".env.local")
        assert {"ID_SECRET", "LINK_SIGNING_KEYS", "SECRETS_ENCRYPTION_KEYS"} <= set(generated)
        public, admin = run_env["WEBHOOK_PORT"], run_env["ADMIN_PORT"]
        with pytest.raises(urllib.error.HTTPError) as public_dashboard:
            urllib.request.urlopen(f"http://127.0.0.1:{public}/dashboard/api/summary")
        assert public_dashboard.value.code == 404
        summary = signed_in_summary(
            f"http://127.0.0.1:{admin}", DEMO_OPERATOR, generated["DEMO_OPERATOR_PASSWORD"]
        )
        assert summary["touchpoints"]["totals"]["sent"] >= 1, summary

        # the fake providers recorded it, and nothing for anyone but the demo address
        sendgrid = FakeAdmin(f"http://127.0.0.1:{run_env['FAKE_SENDGRID_PORT']}")
        twilio = FakeAdmin(f"http://127.0.0.1:{run_env['FAKE_TWILIO_PORT']}")
        emails = [r for r in sendgrid.requests() if r["method"] == "POST"]
        assert emails, "the fake SendGrid received nothing"
        addressed = {
            to["email"]
            for r in emails
            for p in r["payload"].get("personalizations", [])
            for to in p.get("to", [])
        }
        whitelist = out.wait_for("whitelist       demo.lead+", timeout=1)
        assert whitelist is not None, out.tail()
        run_addresses = set(whitelist.split(None, 1)[1].split(" (")[0].split(", "))
        assert addressed and addressed <= run_addresses, (addressed, run_addresses)
        texts = {r["payload"].get("To") for r in twilio.requests() if r["method"] == "POST"}
        import psycopg

        with psycopg.connect(run_env["DATABASE_URL"]) as conn:
            demo_phones = {
                row[0]
                for row in conn.execute(
                    "SELECT phone FROM leads WHERE lower(email) = ANY(%s)", (list(run_addresses),)
                )
            }
            stray = conn.execute(
                "SELECT count(*) FROM job_executions j JOIN leads l USING (lead_id)"
                " WHERE j.status = 'sent' AND NOT lower(l.email) = ANY(%s)",
                (list(run_addresses),),
            ).fetchone()
        assert texts <= demo_phones, texts - demo_phones
        assert texts <= set(DEMO_PHONES) and len(texts) <= 1, texts  # the run's demo number
        assert stray == (0,), "a touch point was sent to a customer who is not whitelisted"
        with psycopg.connect(run_env["DATABASE_URL"]) as conn:
            keys = conn.execute("SELECT shopmonkey_api_key FROM shopmonkey_companies").fetchall()
            leads = conn.execute("SELECT tenant_id, shopmonkey_order_id, lead_id FROM leads")
            lead_rows = [r for r in leads.fetchall() if r[1]]
        box = SecretBox.from_setting(generated["SECRETS_ENCRYPTION_KEYS"])
        assert keys and all(box.decrypt(k) for (k,) in keys)  # encrypted with the generated key
        ids = LeadIdKey(generated["ID_SECRET"].encode())
        assert lead_rows and all(
            lead == lead_id_for_order(ids, tenant, order) for tenant, order, lead in lead_rows
        )
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"make run did not stop on Ctrl-C:\n{out.tail()}")
    assert out.wait_for("all stopped", timeout=5), out.tail()
    leftovers = subprocess.run(
        ["pgrep", "-f", f"{repo}/.venv"], capture_output=True, text=True
    ).stdout.split()
    assert not leftovers, f"processes left running: {leftovers}"
