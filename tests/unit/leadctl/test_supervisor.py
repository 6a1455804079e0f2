"""`leadctl run`'s supervisor: one log stream, and Ctrl-C always stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import sys
    from leadctl.run.supervisor import Process, supervise

    half = "import sys, time; sys.stdout.write('half a line'); sys.stdout.flush(); HALF_END"
    full = "import time; print('one', flush=True); print('two', flush=True); time.sleep(60)"
    sys.exit(supervise([
        Process("half", [sys.executable, "-c", half]),
        Process("full", [sys.executable, "-c", full]),
    ], grace=5.0))
    """
)


def _start() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT.replace("HALF_END", "time.sleep(60)")],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )


def test_ctrl_c_stops_everything_even_when_a_child_wrote_half_a_line() -> None:
    proc = _start()
    time.sleep(2.0)  # both children started and wrote
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert time.monotonic() - started < 10, out
    lines = out.splitlines()
    assert "      full | one" in lines and "      full | two" in lines, out
    assert "      half | half a line" in lines, out  # flushed when its process ended
    assert lines[-1] == "all stopped", out


def test_a_child_that_dies_stops_the_others_with_its_exit_code() -> None:
    script = SCRIPT.replace("HALF_END", "time.sleep(1); sys.exit(3)")
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 3, proc.stdout
    assert "half exited with 3; stopping the others" in proc.stdout, proc.stdout
    assert "      half | half a line" in proc.stdout.splitlines(), proc.stdout


def test_children_stop_when_the_supervisor_is_killed() -> None:
    """SIGKILL cannot be caught: the children still go (they asked for SIGTERM on its death)."""
    proc = _start()
    try:
        deadline = time.monotonic() + 10
        children: list[int] = []
        while len(children) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            children = [
                int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == proc.pid
            ]
        assert len(children) == 2, children
        proc.kill()
        proc.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(c) for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(_alive(c) for c in children), "a service outlived its supervisor"
    finally:
        if proc.poll() is None:
            proc.kill()


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
