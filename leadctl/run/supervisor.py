"""`leadctl run`: start every service as its own process, one readable log stream, Ctrl-C
stops everything it started."""

from __future__ import annotations

import itertools
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

COLOURS = itertools.cycle(["36", "33", "35", "32", "34", "31"])


@dataclass
class Process:
    name: str
    argv: Sequence[str]
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None
    colour: str = field(default_factory=lambda: next(COLOURS))

    def start(self, tty: bool = False) -> None:
        # the children write to a pipe; ask for readable text when we print to a terminal
        fmt = {"LOG_FORMAT": "text"} if tty and not os.environ.get("LOG_FORMAT") else {}
        self.popen = subprocess.Popen(
            list(self.argv),
            env=os.environ | fmt | self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # safe: the supervisor starts no threads
        )

    def label(self, tty: bool) -> str:
        tag = f"{self.name:>10} |"
        return f"\033[{self.colour}m{tag}\033[0m" if tty else tag


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the supervisor dies, even by SIGKILL (Linux),
    so a killed `leadctl run` never leaves services running on their ports."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def leadctl(*args: str) -> list[str]:
    return [sys.executable, "-m", "leadctl.main", *args]


def supervise(processes: list[Process], *, grace: float = 10.0) -> int:
    """Run until Ctrl-C or until a process dies; then stop the others. Returns an exit code."""
    tty = sys.stdout.isatty()
    selector = selectors.DefaultSelector()
    for p in processes:
        p.start(tty)
        assert p.popen is not None and p.popen.stdout is not None
        selector.register(p.popen.stdout, selectors.EVENT_READ, p)
        print(f"started {p.name} (pid {p.popen.pid})", flush=True)
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 0
    # Read what is there, never a blocking readline: a child that writes half a line (a
    # prompt, a progress bar) must not keep Ctrl-C from being seen.
    partial: dict[str, bytes] = {p.name: b"" for p in processes}
    try:
        while not stopping:
            _pump(selector, partial, tty, timeout=0.5)
            for p in processes:
                if p.popen is not None and p.popen.poll() is not None:
                    print(
                        f"{p.name} exited with {p.popen.returncode}; stopping the others",
                        flush=True,
                    )
                    code = p.popen.returncode or 1
                    stopping = True
    finally:
        print("stopping…", flush=True)
        for p in processes:
            if p.popen is not None and p.popen.poll() is None:
                os.killpg(p.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in processes:
            if p.popen is None:
                continue
            try:
                p.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.popen.pid, signal.SIGKILL)
        drained = time.monotonic() + 2.0  # their last words (shutdown logs), then the end
        while selector.get_map() and time.monotonic() < drained:
            _pump(selector, partial, tty, timeout=0.2)
        for p in processes:
            if partial[p.name]:
                _write(p, partial[p.name], tty)
        sys.stdout.flush()
        print("all stopped", flush=True)
    return code


def _pump(
    selector: selectors.BaseSelector, partial: dict[str, bytes], tty: bool, *, timeout: float
) -> None:
    """Copy whatever the children wrote, whole lines only, to our stdout."""
    for key, _ in selector.select(timeout=timeout):
        proc: Process = key.data
        chunk = os.read(key.fd, 65536)
        if not chunk:  # EOF: the process closed its output (it is exiting)
            selector.unregister(key.fileobj)
            chunk = b"\n" if partial[proc.name] else b""
        *lines, partial[proc.name] = (partial[proc.name] + chunk).split(b"\n")
        for line in lines:
            _write(proc, line, tty)
    sys.stdout.flush()


def _write(proc: Process, line: bytes, tty: bool) -> None:
    sys.stdout.write(f"{proc.label(tty)} {line.decode(errors='replace')}\n")
