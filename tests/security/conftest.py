"""The real server the attacks are tried on: `leadctl ingest` as its own process (its defaults:
the public listener on every interface, the admin listener on 127.0.0.1), on the test database,
fresh topics and free ports, with the test deployment's secrets; its log is kept for the tests
that check what it says."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from services.common.kafka.admin import ensure_topics
from services.common.topics import Topics
from tests.conftest import ROOT, free_port, new_topic_prefix
from tests.support import deployment_secrets

#: Failed sign-ins the server allows per account (small, so the brute-force test is quick).
MAX_FAILURES = 3


@dataclass(frozen=True)
class Server:
    public: str
    admin: str
    public_port: int
    admin_port: int
    log: Path
    topics: Topics

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (loopback)
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="module")
def server(
    kafka_bootstrap: str, db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    prefix = new_topic_prefix("sec")
    topics = Topics(prefix)
    ensure_topics(kafka_bootstrap, partitions=4, names=topics.with_dlqs())
    public_port, admin_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ADMIN_", "WEBHOOK_HOST"))}
    env |= deployment_secrets.ENV | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": db_url,
        "KAFKA_TOPIC_PREFIX": prefix,
        "KAFKA_PARTITIONS": "4",
        "WEBHOOK_PORT": str(public_port),
        "ADMIN_PORT": str(admin_port),
        "SIGN_IN_MAX_FAILURES": str(MAX_FAILURES),
        "SHOPMONKEY_API_BASE_URL": "http://127.0.0.1:9/v3",
        "LOG_LEVEL": "info",
        "LOG_FORMAT": "text",
    }
    log = tmp_path_factory.mktemp("security") / "ingest.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["uv", "run", "--frozen", "leadctl", "ingest"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while not (
            _answers(f"http://127.0.0.1:{public_port}/healthz")
            and _answers(f"http://127.0.0.1:{admin_port}/healthz")
        ):
            assert proc.poll() is None, f"ingest exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"ingest did not start:\n{log.read_text()}"
            time.sleep(0.2)
        yield Server(
            public=f"http://127.0.0.1:{public_port}",
            admin=f"http://127.0.0.1:{admin_port}",
            public_port=public_port,
            admin_port=admin_port,
            log=log,
            topics=topics,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
