"""The PostgreSQL the chaos suite may restart: a private Debian cluster (`pg_createcluster`),
never the shared one. Created and started here when missing (as infra/postgres.sh does for
`make up`: the cluster tools run the server as the postgres user), its database migrated;
`restart()` stops it (fast shutdown: every connection cut) and starts it again.

    CHAOS_PG_CLUSTER=15/chaos CHAOS_PG_PORT=5442   (the defaults)
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

import psycopg

from bench.common import migrated_database

DEFAULT_CLUSTER = os.environ.get("CHAOS_PG_CLUSTER", "15/chaos")
DEFAULT_PORT = int(os.environ.get("CHAOS_PG_PORT", "5442"))
#: The clusters other people's tests and `make run` use: never restarted by this suite.
SHARED = {"main"}


def _root(*argv: str) -> subprocess.CompletedProcess[str]:
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    return subprocess.run(
        [*prefix, *argv], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )


@dataclass
class PrivatePostgres:
    version: str
    name: str
    port: int

    @classmethod
    def from_env(cls) -> PrivatePostgres:
        version, _, name = DEFAULT_CLUSTER.partition("/")
        if name in SHARED or DEFAULT_PORT == 5432:
            raise SystemExit(
                f"refusing to use PostgreSQL cluster {DEFAULT_CLUSTER} on :{DEFAULT_PORT} for "
                "chaos: restarting it would break everybody's tests (pick another, e.g. 15/chaos "
                "on 5442)"
            )
        return cls(version, name, DEFAULT_PORT)

    @property
    def base_url(self) -> str:
        return f"postgresql://postgres:postgres@localhost:{self.port}"

    def _status(self) -> str | None:
        listing = subprocess.run(
            ["pg_lsclusters", "--no-header"], capture_output=True, text=True, check=True
        ).stdout
        for line in listing.splitlines():
            fields = line.split()
            if fields[:2] == [self.version, self.name]:
                if int(fields[2]) != self.port:
                    raise SystemExit(f"cluster {self.version}/{self.name} runs on :{fields[2]}")
                return fields[3]
        return None

    def answers(self) -> bool:
        try:
            with psycopg.connect(self.base_url + "/postgres", connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            return False

    def _wait(self, up: bool, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answers() != up:
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL :{self.port} still {'down' if up else 'up'}")
            time.sleep(0.2)

    def up(self, database: str) -> str:
        """The cluster running (created when missing) and `database` migrated; its URL."""
        status = self._status()
        if status is None:
            done = _root("pg_createcluster", self.version, self.name, "-p", str(self.port))
            if done.returncode:
                raise RuntimeError(f"pg_createcluster: {done.stdout}{done.stderr}")
            status = "down"
        if not status.startswith("online"):
            self.start()
        done = _root(
            "runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-p", str(self.port),
            "-c", "ALTER ROLE postgres WITH PASSWORD 'postgres'",
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"setting the postgres password: {done.stderr}")
        return migrated_database(database, base=self.base_url)

    def start(self) -> None:
        done = _root("pg_ctlcluster", self.version, self.name, "start")
        if done.returncode:
            raise RuntimeError(f"pg_ctlcluster start: {done.stdout}{done.stderr}")
        self._wait(up=True)

    def stop(self) -> None:
        done = _root("pg_ctlcluster", self.version, self.name, "stop", "-m", "fast")
        if done.returncode:
            raise RuntimeError(f"pg_ctlcluster stop: {done.stdout}{done.stderr}")
        self._wait(up=False)
