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
    from leadctl.supervisor import Process, supervise

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
