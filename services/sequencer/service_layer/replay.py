"""Following `leadctl replay`: which replay run applies, what each record is to it, its stats,
and 'done' once the group committed past every end offset (every replayed record processed,
whichever worker owned it). The run itself lives in `replay_runs` (the `ReplayRuns` port)."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime
from typing import Literal

from services.common.domain.replay import ReplayRun
from services.common.kafka.partitioning import tenant_of_key
from services.sequencer.adapters import metrics
from services.sequencer.domain.replay import ReplayContext, ReplayStats
from services.sequencer.ports import ReplayRuns, SourceMessage
from services.sequencer.service_layer import failures

log = logging.getLogger(__name__)

REPLAY_PROGRESS_LOG_SECONDS = 15.0  # a run not yet done logs what is left this often


def judged_at(message: SourceMessage, now: datetime) -> datetime:
    """The instant a replayed record is judged at: when it was first written (its record
    timestamp), never later than now. A record then gets the decision its first reading got:
    a step 23 h 59 min late then is not 'too late' because the replay runs a minute later.
    (Steps a timer emitted are judged by the replay's own timer, at the wall clock.)"""
    stamp = message.timestamp
    if not stamp or stamp <= 0:  # no timestamp (an old message format): the wall clock
        return now
    return min(now, datetime.fromtimestamp(stamp, UTC))


class ReplayCoordinator:
    """The current run, as this worker follows it; without `runs`, never a replay."""

    def __init__(self, runs: ReplayRuns | None, *, app_group: str, stats: ReplayStats) -> None:
        self.runs = runs
        self.app_group = app_group
        self.stats = stats
        self.run: ReplayRun | None = None
        self._context: ReplayContext | None = None
        #: whether the current run was looked up once (batches before that look it up first)
        self.loaded = runs is None
        self._logged_at = -math.inf

    def _follow(self, run: ReplayRun | None) -> None:
        self.run = run
        self._context = None if run is None else ReplayContext(run.id, run.since)

    def context_for(self, message: SourceMessage) -> ReplayContext | Literal[False] | None:
        """None: a live record; a context: replay it; False: a replayed record of a tenant
        outside the replay, skipped entirely."""
        run = self.run
        if run is None or not run.in_range(message.topic, message.partition, message.offset):
            return None
        if not run.covers(tenant_of_key(message.key)):
            self.stats.events_skipped += 1
            return False
        self.stats.events_reread += 1
        return self._context

    async def load(self) -> None:
        """Before a batch's first record: the run that applies, if not looked up yet. Only
        the run (no group offsets): this runs under the batch lock, and asking Kafka for the
        group's offsets there would stall every agent while Kafka is slow."""
        if not self.loaded:
            await self._poll(check_done=False)

    async def poll(self) -> None:
        """Every REPLAY_POLL_SECONDS (a Faust timer: no arguments)."""
        await self._poll(check_done=True)

    async def _poll(self, *, check_done: bool) -> None:
        runs = self.runs
        if runs is None:
            return
        try:
            await self._update(runs, check_done=check_done)
        except Exception:
            self.loaded = True  # batches do not wait on the database: the timer retries
            failures.retry_later("could not read or update replay_runs; retrying later")

    async def _update(self, runs: ReplayRuns, *, check_done: bool) -> None:
        """The current run, its stats, and 'done' once the group committed past every end
        offset."""
        run = await runs.current(self.app_group)
        previous = self.run
        stats = self.stats
        if previous is not None and not stats.empty():
            await runs.add_stats(previous.id, stats.take())
        # only now: a batch that comes while this call waits loads the run itself
        self._follow(run)
        self.loaded = True
        if run is None:
            metrics.REPLAY_BEHIND.set(0)
            return
        if previous is None or previous.id != run.id:
            log.info("replay %s active: records below %s", run.id, run.end_offsets)
        if run.status == "pending":
            await runs.mark_running(run.id)
        if not check_done:
            return
        behind = await runs.behind(self.app_group, run.end_offsets)
        metrics.REPLAY_BEHIND.set(sum(behind.values()))
        if behind:
            self._progress(run, behind)
            return
        if not stats.empty():
            await runs.add_stats(run.id, stats.take())
        await runs.finish(run.id)
        log.info("replay %s done", run.id)
        self._follow(None)

    def _progress(self, run: ReplayRun, behind: dict[str, int]) -> None:
        """Logged every REPLAY_PROGRESS_LOG_SECONDS while a run is not done: what is left."""
        now = time.monotonic()
        if now < self._logged_at + REPLAY_PROGRESS_LOG_SECONDS:
            return
        self._logged_at = now
        log.info(
            "replay %s: %d records behind (%s)",
            run.id,
            sum(behind.values()),
            ", ".join(f"{name} {left}" for name, left in sorted(behind.items())),
        )
