"""A private local Kafka cluster (`LOCAL_KAFKA_BROKERS=3 infra/kafka.sh`) in its own state
directory and on its own ports, so neither the shared broker nor anyone's default cluster is
touched: up/down, and one node at a time (controlled stop, SIGKILL, SIGSTOP/SIGCONT), for the
chaos suite and the cluster tests. Every JVM it starts is stopped by `down()` (and killed if
`down` leaves one behind)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parents[2]
KAFKA_SH = str(ROOT / "infra" / "kafka.sh")
NODES = (1, 2, 3)
#: librdkafka's own lines ("connection refused" while a node is down) are not ours to print
QUIET = logging.getLogger("bench.chaos.librdkafka")
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_base() -> int:
    """A base B where B+100*(n-1) .. +2 are free for the three nodes (below the ephemeral
    range, away from the default cluster ports 29092..29294)."""
    for _ in range(200):
        base = random.randrange(20000, 28000, 100) + random.randrange(10, 90)
        if all(port_free(base + 100 * (n - 1) + k) for n in NODES for k in range(3)):
            return base
    raise RuntimeError("no free port base for a local cluster")


class LocalCluster:
    """Three combined broker+controller nodes under `state`, node N on base+100*(N-1)."""

    def __init__(
        self, state: Path, base: int, *, heap: str = "-Xmx384m -Xms128m", quick_jit: bool = True
    ) -> None:
        """`quick_jit`: C1 only, which starts faster (tests); a sustained load wants both."""
        self.state = state
        self.base = base
        self.env = {
            **os.environ,
            "LOCAL_KAFKA_BROKERS": "3",
            "KAFKA_STATE_DIR": str(state),
            "KAFKA_CLUSTER_PORT_BASE": str(base),
            "KAFKA_HEAP_OPTS": f"{heap}",
            "KAFKA_OPTS": "-XX:TieredStopAtLevel=1" if quick_jit else "",
            "KAFKA_READY_TIMEOUT": "120",
        }
        for inherited in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_PORT", "KAFKA_SECURITY_PROTOCOL"):
            self.env.pop(inherited, None)
        self.bootstrap = ",".join(f"localhost:{base + 100 * (n - 1)}" for n in NODES)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["bash", KAFKA_SH, *args], env=self.env, capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"kafka.sh {' '.join(args)}:\n{done.stdout}{done.stderr}")
        return done

    # the whole cluster ------------------------------------------------------------------------
    def up(self) -> LocalCluster:
        self.run("up")
        return self

    def down(self) -> None:
        self.run("down", check=False)
        for pid in self.pids():  # whatever `down` left behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
                os.kill(pid, signal.SIGKILL)

    def pids(self) -> list[int]:
        out = []
        for n in NODES:
            pidfile = self.state / "cluster" / f"node{n}" / "kafka.pid"
            with contextlib.suppress(OSError, ValueError):
                out.append(int(pidfile.read_text().strip()))
        return out

    def admin(self) -> AdminClient:
        return AdminClient({"bootstrap.servers": self.bootstrap, "logger": QUIET})

    def fully_replicated(self, prefix: str = "") -> bool:
        """Every partition (of topics under `prefix`) has all its replicas in sync."""
        try:
            topics = self.admin().list_topics(timeout=10).topics
        except Exception:
            return False
        return all(
            set(p.isrs) == set(p.replicas)
            for name, t in topics.items()
            if name.startswith(prefix)
            for p in t.partitions.values()
        )

    def wait_fully_replicated(self, timeout: float = 120.0) -> float:
        started = time.monotonic()
        while not self.fully_replicated():
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"partitions still under-replicated after {timeout:.0f} s")
            time.sleep(0.5)
        return time.monotonic() - started

    # one node -------------------------------------------------------------------------------
    def pid(self, node: int) -> int:
        return int(self.run("pid", str(node)).stdout.strip())

    def kill_node(self, node: int) -> None:
        self.run("kill-node", str(node))

    def stop_node(self, node: int) -> None:
        self.run("stop-node", str(node))

    def start_node(self, node: int) -> None:
        self.run("start-node", str(node))

    def pause_node(self, node: int) -> int:
        pid = self.pid(node)
        os.kill(pid, signal.SIGSTOP)
        return pid

    def resume_node(self, pid: int) -> None:
        os.kill(pid, signal.SIGCONT)
