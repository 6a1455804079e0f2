"""What a replay would re-read, per partition (pure: no Kafka, no database).

A partition's records below the group's committed offset were processed already; those are
the only ones a replay may re-read as "replayed" (`replay_runs.end_offsets`), because the
sequencer treats everything below an end offset as replay (record-only commands, other tenants
skipped). So per partition:

- `end`    = min(offset at `--until` (or the high watermark), committed offset);
- `start`  = min(offset at `--since`, committed offset): a rewind never moves a group forward;
- re-read  = `end - start` records; records at and after `end` are processed normally.

With `--tenant`, only the partitions those tenants hash to are rewound (every topic is keyed
by tenant, murmur2 like Faust/aiokafka and our confluent producers, DESIGN §2): every other
partition, and so every other tenant on them, is not touched at all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.common.domain.replay import TP
from services.common.kafka.partitioning import partition_for


@dataclass(slots=True)
class PartitionPlan:
    tp: TP
    low: int
    high: int
    committed: int | None
    start: int = 0
    end: int = 0
    selected: bool = True
    note: str = ""
    tenant_events: int | None = None  # with --tenant: records of those tenants in the range
    estimated: bool = False  # tenant_events extrapolated from a capped scan

    @property
    def rereads(self) -> int:
        return max(0, self.end - self.start) if self.selected else 0

    @property
    def rewinds(self) -> bool:
        return self.selected and self.rereads > 0


@dataclass(slots=True)
class ReplayPlan:
    group: str
    partitions: list[PartitionPlan] = field(default_factory=list)
    tenants: tuple[uuid.UUID, ...] = ()

    @property
    def rewound(self) -> list[PartitionPlan]:
        return [p for p in self.partitions if p.rewinds]

    @property
    def total(self) -> int:
        return sum(p.rereads for p in self.partitions)

    @property
    def tenant_total(self) -> int | None:
        if not self.tenants:
            return None
        return sum(p.tenant_events or 0 for p in self.partitions if p.selected)

    def new_offsets(self) -> dict[TP, int]:
        return {p.tp: p.start for p in self.rewound}

    def end_offsets(self) -> dict[TP, int]:
        return {p.tp: p.end for p in self.rewound}


def build_plan(
    group: str,
    *,
    watermarks: Mapping[TP, tuple[int, int]],
    committed: Mapping[TP, int | None],
    since: Mapping[TP, int | None],
    until: Mapping[TP, int | None] | None = None,
    tenants: Iterable[uuid.UUID] = (),
) -> ReplayPlan:
    chosen = tuple(dict.fromkeys(tenants))
    counts: dict[str, int] = {}
    for topic, _ in watermarks:
        counts[topic] = counts.get(topic, 0) + 1
    wanted = {
        (topic, partition_for(t, n)) for topic, n in counts.items() for t in chosen
    }  # (topic, partition) holding a chosen tenant
    plan = ReplayPlan(group=group, tenants=chosen)
    for tp in sorted(watermarks):
        low, high = watermarks[tp]
        done = committed.get(tp)
        part = PartitionPlan(tp=tp, low=low, high=high, committed=done)
        plan.partitions.append(part)
        if chosen and tp not in wanted:
            part.selected = False
            part.note = "no chosen tenant here: untouched"
            continue
        if done is None:
            part.selected = False
            part.note = "group never committed here: nothing to replay"
            continue
        at_since = since.get(tp)
        at_until = until.get(tp) if until is not None else None
        bound = high if at_until is None else at_until
        part.end = min(bound, done)
        part.start = min(high if at_since is None else at_since, done)
        if part.end <= part.start:
            part.end = part.start
            part.note = "nothing processed in the window"
        elif done < bound:
            part.note = f"group lags: {bound - done} unprocessed record(s) stay normal"
    return plan
