"""The timer: later touch points without scanning the lead table.

The due index (`domain/due_index.py`) holds, per partition this worker actively owns, the
leads that may have something due. Every TOUCHPOINT_TICK_SECONDS the timer publishes one tick
record for each owned partition with leads due (never for standbys), and the tick is handled
on that partition like any other record, so table writes stay co-partitioned and serialised
with the agents. The index is rebuilt from the lead table when a partition becomes active here
(after recovery) and dropped when it is revoked.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime

from services.sequencer.adapters import metrics
from services.sequencer.domain.due_index import DueIndex
from services.sequencer.domain.replay import ReplayContext
from services.sequencer.ports import Assignment, Directory, DueHints, Outputs, SourceEvent
from services.sequencer.service_layer.batches import APPLIED, counted
from services.sequencer.service_layer.failures import lead_not_evaluated
from services.sequencer.service_layer.sequencer import Sequencer

log = logging.getLogger(__name__)

REBUILD_CHUNK = 2_000
#: Leads evaluated per tick record; more → another tick at once. A tick's leads are evaluated
#: in one go on the event loop (~0.26 ms each at 1M leads): 5,000 held it over a second when
#: many fell due together, and every order waited (bench/sequencer/README.md).
TICK_LIMIT = 200
#: Tick records per batch: one, so a batch holds the loop for at most TICK_LIMIT leads and
#: the orders waiting for the batch lock go between two ticks.
TICK_BATCH_SIZE = 1
TICK_RETRY_SECONDS = 60.0


class Ticks:
    def __init__(
        self,
        *,
        sequencer: Sequencer,
        directory: Directory,
        outputs: Outputs,
        assignment: Assignment,
        hints: DueHints,
        due: DueIndex,
        topic: str,
        clock: Callable[[], datetime],
    ) -> None:
        """`topic`: the internal topic of the tick records; `due`: the index the sequencer's
        `Schedule` fills."""
        self.sequencer = sequencer
        self.directory = directory
        self.outputs = outputs
        self.assignment = assignment
        self.hints = hints
        self.due = due
        self.topic = topic
        self.clock = clock
        self._indexed: set[int] = set()
        self._sent: dict[int, float] = {}

    def on_tick(self, event: SourceEvent, now: datetime, replay: ReplayContext | None) -> str:
        """A tick record: evaluate the leads of its partition that are due by `now`."""
        partition, at = event.message.partition, now.timestamp()
        self._sent.pop(partition, None)
        leads = self.due.pop_due(partition, at, TICK_LIMIT)
        # Asked before the leads are evaluated: only leads left over by TICK_LIMIT call for
        # another tick at once. A lead popped from the current 10 s bucket but due later in
        # it goes back into that bucket; asked afterwards, the partition would look due
        # again, and tick after tick (each a Kafka round trip under the batch lock) would pop
        # it until it is due, starving the orders (bench/sequencer/README.md). It waits for
        # the timer's next tick instead, when it is due.
        more = self.due.has_due(partition, at)
        for raw_id in leads:
            try:
                counted(self.sequencer.on_due(uuid.UUID(bytes=raw_id), self.directory.get, now))
            except Exception:  # failures.py decides: logged, the other leads go on
                lead_not_evaluated(uuid.UUID(bytes=raw_id))
        if more:
            self._send(partition, at)
        return APPLIED

    def _send(self, partition: int, now: float) -> None:
        self._sent[partition] = now
        self.outputs.tick(self.topic, partition, str(now).encode())
        metrics.TICKS.inc()

    async def publish(self) -> None:
        """Every TOUCHPOINT_TICK_SECONDS: a tick for each owned partition with leads due."""
        if self.assignment.rebalancing():
            return
        now = self.clock().timestamp()
        for partition in sorted(self.assignment.active_partitions() & self._indexed):
            sent = self._sent.get(partition)
            if sent is not None and now - sent < TICK_RETRY_SECONDS:
                continue  # the last tick is still on its way
            if self.due.has_due(partition, now):
                self._send(partition, now)
        metrics.DUE_ENTRIES.set(self.due.size())

    async def rebuild(self) -> None:
        """After recovery: index the leads of newly active partitions, drop lost ones."""
        actives = self.assignment.active_partitions()
        for partition in self.due.partitions() - actives:
            self.due.drop(partition)
        self._indexed &= actives
        for partition in sorted(actives - self._indexed):
            count, chunk = 0, []
            for entry in self.hints.due_entries(partition):
                chunk.append(entry)
                if len(chunk) >= REBUILD_CHUNK:
                    count += self.due.extend(partition, chunk)
                    chunk = []
                    await asyncio.sleep(0)  # keep heartbeats and agents going
            count += self.due.extend(partition, chunk)
            self._indexed.add(partition)
            log.info("due index: partition %d has %d leads waiting", partition, count)

    def revoked(self, partitions: Iterable[int]) -> None:
        """Source partitions this worker lost: their leads are someone else's to tick."""
        for partition in partitions:
            self.due.drop(partition)
            self._indexed.discard(partition)
