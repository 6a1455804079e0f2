"""A second, throwaway single-node Kafka broker for tests that must break Kafka.

Same jars and server.properties template as infra/kafka.sh (`.local/kafka/libs`,
`infra/kafka/server.properties.tmpl`), its own ports and a temporary data directory, so the
shared broker on :9092 is never touched. `kill()` is a crash (SIGKILL), `stop()` a controlled
shutdown, `pause()`/`resume()` freeze it (SIGSTOP/SIGCONT); `start()` again reuses the data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

from confluent_kafka.admin import AdminClient

ROOT = Path(__file__).resolve().parents[2]
LIBS = ROOT / ".local" / "kafka" / "libs"
TEMPLATE = ROOT / "infra" / "kafka" / "server.properties.tmpl"
LOG4J = ROOT / "infra" / "kafka" / "log4j2.properties"
JVM_OPTS = [
    "-Xmx384m",
    "-Xms128m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:TieredStopAtLevel=1",  # C1 only: starts faster, fine for a test broker
    "-Djava.awt.headless=true",
]


class DisposableKafka:
    def __init__(self, workdir: Path, *, port: int, controller_port: int) -> None:
        if not (LIBS / ".stamp").exists():
            # `make up` reused a broker that answered, so this checkout never resolved the jars
            subprocess.run(["bash", str(ROOT / "infra" / "kafka.sh"), "install"], check=True)
        if not (LIBS / ".stamp").exists():
            raise RuntimeError(f"Kafka jars missing in {LIBS}: run `bash infra/kafka.sh install`")
        self.workdir = workdir
        self.port = port
        self.controller_port = controller_port
        self.data = workdir / "data"
        self.logs = workdir / "logs"
        self.props = workdir / "server.properties"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _java(self, *args: str, log_name: str) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            *JVM_OPTS,
            f"-Dlog4j2.configurationFile={LOG4J}",
            f"-Dkafka.logs.dir={self.logs}",
            f"-Dkafka.log.name={log_name}",
            "-cp",
            f"{LIBS}/*",
            *args,
        ]

    def _render(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        text = (
            TEMPLATE.read_text()
            .replace("@KAFKA_HOST@", "127.0.0.1")
            .replace("@KAFKA_PORT@", str(self.port))
            .replace("@KAFKA_CONTROLLER_PORT@", str(self.controller_port))
            .replace("@KAFKA_DATA_DIR@", str(self.data))
        )
        self.props.write_text(text)
        if not (self.data / "meta.properties").exists():
            cluster = subprocess.run(
                self._java("kafka.tools.StorageTool", "random-uuid", log_name="storage"),
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--standalone",
                    "-t",
                    cluster,
                    "-c",
                    str(self.props),
                    log_name="storage",
                ),
                check=True,
                capture_output=True,
            )

    def start(self, timeout: float = 90.0) -> None:
        """Start (or restart, keeping its data) and wait until it answers metadata requests."""
        if self.process is not None and self.process.poll() is None:
            return
        self._render()
        out = (self.workdir / "kafka.out").open("ab")
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(self.props), log_name="server"),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"disposable Kafka exited: see {self.workdir / 'kafka.out'}")
            if self.answers():
                return
            time.sleep(0.3)
        raise RuntimeError(f"disposable Kafka not ready after {timeout:.0f}s")

    def answers(self, timeout: float = 1.0) -> bool:
        admin = AdminClient(
            {
                "bootstrap.servers": self.bootstrap,
                "socket.connection.setup.timeout.ms": 1000,
                "log_level": 0,
            }
        )
        try:
            return bool(admin.list_topics(timeout=timeout).brokers)
        except Exception:
            return False

    def _signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """Crash it (SIGKILL): what the OS already has of its log survives, like a real crash."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()
        self._signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
