"""What every benchmark (and the tests, through `tests/conftest.py`) needs from the machine:
where Kafka and PostgreSQL are, a free loopback port, a migrated database of its own, a
timezone where every send window is open now, and the benches' deployment secrets (fixed, so
a bench database written by one run is read by the next; never used anywhere else)."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PG_BASE = os.environ.get("BENCH_PG_BASE", "postgresql://postgres:postgres@localhost:5432")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
#: ID_SECRET, LINK_SIGNING_KEYS and SECRETS_ENCRYPTION_KEYS of every bench process.
SECRETS = {
    "ID_SECRET": "bench-id-secret-000000000000000000000000000000",
    "LINK_SIGNING_KEYS": "bench-link-key-0000000000000000000000000000000",
    "SECRETS_ENCRYPTION_KEYS": "YmVuY2gtb25seS1rZXktMDAwMDAwMDAwMDAwMDAwMDA=",
}


def lead_ids() -> Any:
    """The benches' `LeadIdKey` (what their ingest derives lead ids with)."""
    from schemas.base import LeadIdKey

    return LeadIdKey(SECRETS["ID_SECRET"].encode())


def secret_box() -> Any:
    """The benches' `SecretBox` (company secrets in a bench database)."""
    from services.common.secret_box import SecretBox

    return SecretBox.from_setting(SECRETS["SECRETS_ENCRYPTION_KEYS"])


def cpu_seconds(pid: int, *, reaped: bool = False) -> float | None:
    """CPU seconds (user + system, every thread) the process has used so far, or (`reaped`)
    what its children that ended have used; None if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    at = 13 if reaped else 11  # cutime, cstime: fields 16-17; utime, stime: 14-15
    return (int(fields[at]) + int(fields[at + 1])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def delete_topics_where(bootstrap: str, keep: Callable[[str], bool]) -> list[str]:
    """Delete every topic `keep` refuses, and wait until the broker has: a request left to a
    client that goes away with the process may never be sent. Returns what could not be
    deleted (printed too); never raises, since a cleanup must not hide the run's own result.

    Every run of a bench left its topics behind when it did not wait: a broker of the dev
    set-up gathered 2,500 of them (10,500 partitions), a high-watermark checkpoint over all of
    them every 5 s and metadata requests that list them, and later runs measured that. A
    broker also keeps ~3 open files a partition: a test suite that left its topics behind
    ended with the broker out of file descriptors."""
    from services.common.kafka.admin import admin_client

    failed: list[str] = []
    try:
        admin = admin_client(bootstrap)
        names = [n for n in admin.list_topics(timeout=10).topics if not keep(n)]
        if names:
            for name, future in admin.delete_topics(names, operation_timeout=60).items():
                try:
                    future.result()
                except Exception as exc:  # reported; the others still go
                    failed.append(name)
                    print(f"topic {name} not deleted: {exc}", flush=True)
            # the controller has committed the deletions; a broker's metadata shows them a
            # moment later (under load, after the caller had listed the topics again)
            deadline = time.monotonic() + 30
            gone = set(names) - set(failed)
            while gone & set(admin.list_topics(timeout=10).topics):
                if time.monotonic() > deadline:
                    left = sorted(gone & set(admin.list_topics(timeout=10).topics))
                    failed.extend(left)
                    print(f"topics still listed 30 s after their deletion: {left}", flush=True)
                    break
                time.sleep(0.1)
    except Exception as exc:  # no broker: nothing to clean
        print(f"topic cleanup skipped: {exc}", flush=True)
    return failed


def delete_topics_with_prefix(bootstrap: str, prefix: str) -> list[str]:
    """Delete the topics a run made under `prefix` (its own and those Faust made for its
    tables); see `delete_topics_where`."""
    if not prefix:
        raise ValueError("an empty prefix would delete every topic")
    return delete_topics_where(bootstrap, lambda name: not name.startswith(prefix))


def tz_at_local_hour(hour: int, now: datetime | None = None) -> str:
    """An IANA zone whose local time is now `hour`:xx (Etc/GMT zones have no DST)."""
    offset = (hour - (now or datetime.now(UTC)).hour) % 24
    if offset > 14:
        offset -= 24
    # Etc/GMT-3 is UTC+3: the sign is inverted
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"


def migrated_database(
    name: str, *, base: str = PG_BASE, template: str | None = None, fresh: bool = False
) -> str:
    """The URL of database `name` on `base` (PG_BASE), created when missing (as a copy of
    database `template`, if given) and migrated to head. `fresh`: dropped first."""
    import psycopg
    from alembic import command
    from psycopg import sql

    from leadctl.provision import alembic_config

    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if fresh:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            create = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if template is not None:
                create += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
            conn.execute(create)
    url = f"{base}/{name}"
    config = alembic_config("postgresql+psycopg://" + url.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    config.attributes["secrets_encryption_keys"] = SECRETS["SECRETS_ENCRYPTION_KEYS"]
    command.upgrade(config, "head")
    return url
