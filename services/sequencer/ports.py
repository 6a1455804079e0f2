"""The sequencer's ports: what the use cases, the batch loop, the timer and the replay
coordination need from the outside, as small Protocols. `adapters/` implements them over
Faust, Kafka and PostgreSQL; the unit tests use hand-written fakes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from schemas.events import LeadChanged, TouchPointCommand
from services.common.domain.dead_letter import DeadLetter
from services.common.domain.replay import TP, ReplayRun
from services.sequencer.domain.lead import Lead
from services.sequencer.domain.plan import TenantConfig


# the records --------------------------------------------------------------------------------
class SourceMessage(Protocol):
    """A consumed record (Faust's `Message`)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def key(self) -> bytes | None: ...
    @property
    def value(self) -> bytes | None: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def headers(self) -> Sequence[tuple[str, bytes]] | Mapping[str, bytes] | None: ...


class SourceEvent(Protocol):
    """A record as an agent's stream hands it over (Faust's `Event`)."""

    @property
    def message(self) -> SourceMessage: ...


# the use cases ------------------------------------------------------------------------------
class LeadStore(Protocol):
    def get(self, lead_id: uuid.UUID) -> Lead | None: ...
    def put(self, lead: Lead, due: datetime | None) -> None:
        """Store `lead`; `due` is when it may next need the timer (kept for index rebuilds)."""


class CustomerIndex(Protocol):
    def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]: ...
    def add(self, tenant_id: uuid.UUID, customer_id: str, lead_id: uuid.UUID) -> None: ...


class Outbox(Protocol):
    def command(self, command: TouchPointCommand) -> None: ...
    def lead_changed(self, change: LeadChanged) -> None: ...


class Schedule(Protocol):
    def schedule(self, lead_id: uuid.UUID, at: datetime) -> None: ...


class Directory(Protocol):
    """Tenants' configurations: `get` answers from memory (the hot path), `ensure` loads the
    tenants of a batch not seen yet, `refresh` reloads them all."""

    def get(self, tenant_id: uuid.UUID) -> TenantConfig: ...
    async def ensure(self, tenant_ids: Iterable[uuid.UUID]) -> None: ...
    async def refresh(self) -> None: ...


# the batch loop -----------------------------------------------------------------------------
class ChangelogSink(Protocol):
    def changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None: ...


class Outputs(Outbox, ChangelogSink, Protocol):
    """Everything a batch writes to Kafka, acknowledged by `flush`."""

    def dead_letter(self, letter: DeadLetter) -> None: ...
    def tick(self, topic: str, partition: int, value: bytes) -> None: ...
    async def flush(self) -> None: ...
    def discard(self) -> None: ...
    def take_changelog_offsets(self) -> Mapping[TP, int]: ...


class Tables(Protocol):
    """The state tables behind `LeadStore` and `CustomerIndex`: changed in memory while a
    batch is handled, written once its outputs are acknowledged."""

    def make_current(self, event: SourceEvent | None) -> None:
        """Writes of the records handled from now on go to `event`'s partition."""

    def write(self) -> None: ...
    def persist_offsets(self, changelog_offsets: Mapping[TP, int]) -> None: ...
    def discard(self) -> None: ...


# the timer ----------------------------------------------------------------------------------
class Assignment(Protocol):
    """The source partitions this worker owns."""

    def active_partitions(self) -> set[int]:
        """Actively owned (never standbys)."""

    def rebalancing(self) -> bool: ...


class DueHints(Protocol):
    def due_entries(self, partition: int) -> Iterator[tuple[bytes, float]]:
        """(lead id bytes, due epoch second) of every lead held for `partition` that may
        need the timer."""


# the replay ---------------------------------------------------------------------------------
class ReplayRuns(Protocol):
    """`replay_runs` (written by `leadctl replay`) and the group's committed offsets."""

    async def current(self, app_group: str) -> ReplayRun | None: ...
    async def mark_running(self, run_id: uuid.UUID) -> None: ...
    async def add_stats(self, run_id: uuid.UUID, delta: dict[str, int]) -> None: ...
    async def finish(self, run_id: uuid.UUID) -> None: ...
    async def behind(self, app_group: str, end_offsets: dict[str, int]) -> dict[str, int]: ...
