"""A replay run: the agreement between `leadctl replay` (which writes it) and the sequencer
(which follows it), one row of `replay_runs` (DESIGN §7). Pure.

`leadctl replay --execute` rewinds the sequencer's consumer group and records the run: records
of a source partition at offsets below `end_offsets["<topic>:<partition>"]` (the high watermark
when the replay was requested) are *replayed* records; `tenants` (None: every tenant) says
whose. Status: pending → running → done, or aborted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: A topic partition.
TP = tuple[str, int]

#: Statuses of a run that is not over.
OPEN = ("pending", "running")


def tp_key(tp: TP) -> str:
    """`"<topic>:<partition>"`, the key of `replay_runs.end_offsets`."""
    return f"{tp[0]}:{tp[1]}"


def parse_tp_key(key: str) -> TP:
    topic, _, partition = key.rpartition(":")
    return topic, int(partition)


@dataclass(frozen=True, slots=True)
class ReplayRun:
    id: uuid.UUID
    since: datetime
    #: `"<topic>:<partition>"` → the first offset that is not replayed (as stored)
    end_offsets: dict[str, int]
    tenants: frozenset[uuid.UUID] | None = None  # None: every tenant
    status: str = "pending"
    app_group: str = ""
    until: datetime | None = None
    created_at: datetime | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Any) -> ReplayRun:
        """From a `replay_runs` row (any object with its columns as attributes)."""
        return cls(
            id=row.id,
            since=row.since,
            end_offsets={str(k): int(v) for k, v in dict(row.end_offsets or {}).items()},
            tenants=None if row.tenants is None else frozenset(row.tenants),
            status=row.status,
            app_group=getattr(row, "app_group", ""),
            until=getattr(row, "until", None),
            created_at=getattr(row, "created_at", None),
            stats=dict(getattr(row, "stats", None) or {}),
        )

    @property
    def partitions(self) -> dict[TP, int]:
        """`end_offsets` by (topic, partition)."""
        return {parse_tp_key(k): v for k, v in self.end_offsets.items()}

    def in_range(self, topic: str, partition: int, offset: int) -> bool:
        """Was this record already read before the replay was requested?"""
        return offset < self.end_offsets.get(f"{topic}:{partition}", 0)

    def covers(self, tenant_id: uuid.UUID | None) -> bool:
        return self.tenants is None or (tenant_id is not None and tenant_id in self.tenants)
