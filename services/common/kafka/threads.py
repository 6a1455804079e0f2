"""Scheduling of librdkafka's own threads (Linux; elsewhere a no-op).

A producer's broker thread wakes for nearly every record: the first record of a partition's
batch wakes it to start the linger timer, the timer to send, the response to settle it. When
the process has one core to itself (a container limited to one CPU, or `bench/ingest`), each
wake-up preempts the event loop in the middle of a request: two context switches and cold caches
per record, ~0.8 a record at 5,000 records/s. SCHED_BATCH (sched(7)) keeps the thread's fair
share of the CPU and its nice value, but on wake-up it waits for the loop to block or to use up
its time slice instead of preempting it, and the records that came meanwhile join its batch.
On a host with idle cores it changes nothing: the thread runs at once elsewhere.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: librdkafka names its threads `rdk:main`, `rdk:broker<id>`, `rdk:broker-1` (bootstrap) ...
THREAD_PREFIX = "rdk:"
_TASKS = "/proc/self/task"


def batch_librdkafka_threads() -> int:
    """Make this process's librdkafka threads SCHED_BATCH; returns how many were changed.

    Threads are created as brokers are discovered, so call it again now and then (cheap: one
    directory listing and a file read per thread). Threads already SCHED_BATCH, threads gone
    meanwhile and a refusal by the system are skipped; never raises.
    """
    if not hasattr(os, "SCHED_BATCH"):
        return 0
    try:
        tids = os.listdir(_TASKS)
    except OSError:
        return 0
    changed = 0
    for tid in tids:
        try:
            with open(f"{_TASKS}/{tid}/comm", encoding="utf-8", errors="replace") as comm:
                if not comm.read().startswith(THREAD_PREFIX):
                    continue
            if os.sched_getscheduler(int(tid)) != os.SCHED_BATCH:
                os.sched_setscheduler(int(tid), os.SCHED_BATCH, os.sched_param(0))
                changed += 1
        except OSError as exc:  # the thread ended, or the system refused: keep the default
            log.debug("librdkafka thread %s keeps its scheduling: %s", tid, exc)
    return changed
