"""The demo's banner: one line when this run has sent its first touch point to one of this
run's demo addresses. Rows of earlier runs, and sends to anyone else, never count; while none
is sent, the first demo touch point this run decided otherwise is said with its reason (the
demo is not silently stuck)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

#: This run's decided touch points to the demo's recipients (sent ones first, then the oldest).
DEMO_DECISIONS_SQL = """
SELECT status, channel, recipient, reason FROM job_executions
WHERE record_only = false AND decided_at >= %(since)s
  AND lower(recipient) = ANY(%(recipients)s)
  AND status IN ('sent', 'skipped', 'deferred', 'failed', 'unknown')
ORDER BY (status = 'sent') DESC, decided_at
LIMIT 1
"""


RECENT_SENDS_SQL = """
SELECT DISTINCT recipient FROM job_executions
WHERE status = 'sent' AND decided_at >= now() - interval '24 hours'
  AND recipient = ANY(%(recipients)s)
"""


def recently_sent_to(libpq_url: str, recipients: Collection[str]) -> set[str]:
    """Which of `recipients` were sent something in the last 24 h (the frequency cap's
    window); empty when the database does not answer (the run says so itself)."""
    import psycopg

    try:
        with psycopg.connect(libpq_url, connect_timeout=3) as conn:
            rows = conn.execute(RECENT_SENDS_SQL, {"recipients": list(recipients)}).fetchall()
    except psycopg.Error:
        return set()
    return {r[0] for r in rows}


def first_demo_decision(
    conn: Any, *, since: datetime, recipients: Collection[str]
) -> tuple[str, str, str, str | None] | None:
    """(status, channel, recipient, reason) of this run's first sent touch point to a demo
    recipient, else of its first other decision for one, else None (`conn`: psycopg)."""
    row = conn.execute(
        DEMO_DECISIONS_SQL, {"since": since, "recipients": [r.lower() for r in recipients]}
    ).fetchone()
    return None if row is None else (row[0], row[1], row[2], row[3])


def banner_line(decision: tuple[str, str, str, str | None], seconds: float) -> str:
    status, channel, recipient, reason = decision
    if status == "sent":
        return (
            f"first touch point sent to the demo address ({channel} to {recipient}) "
            f"by this run, after {seconds:.1f} s"
        )
    return (
        f"no demo touch point sent yet: the first one was {status} ({reason or 'no reason'}; "
        f"{channel} to {recipient}); `uv run leadctl status` shows every reason"
    )


def watch_first_touch(
    libpq_url: str,
    *,
    since: datetime,
    started: float,
    recipients: Collection[str],
    stop: threading.Event,
    say: Callable[[str], None],
) -> threading.Thread:
    """Say once when this run sends to a demo recipient (and once before, if its first demo
    touch point was not sent)."""
    import psycopg

    def loop() -> None:
        told_why = False
        while not stop.wait(1.0):
            try:
                with psycopg.connect(libpq_url, connect_timeout=3) as conn:
                    decision = first_demo_decision(conn, since=since, recipients=recipients)
            except psycopg.Error:
                continue
            if decision is None or (decision[0] != "sent" and told_why):
                continue
            say(banner_line(decision, time.monotonic() - started))
            if decision[0] == "sent":
                return
            told_why = True

    thread = threading.Thread(target=loop, name="first-touch", daemon=True)
    thread.start()
    return thread
