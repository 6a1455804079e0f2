"""What a replay did, read back from the topics once the sequencer has passed its end offsets
(and outbound has read the commands it re-emitted): leads changed, commands re-emitted
(record-only), and outbound's decisions on them (skipped as already done = `duplicate`,
recorded = gate allowed it and nothing was sent, and — must stay 0 — anything sent)."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from leadctl.replay.kafka import KafkaView
from services.common.topics import Topics


@dataclass(slots=True)
class Summary:
    events_reread: int = 0
    tenant_events_reread: int | None = None
    leads_changed: int = 0
    lead_changes: int = 0
    commands_reemitted: int = 0
    outcomes: int = 0
    skipped_already_done: int = 0
    recorded: int = 0
    sent: int = 0
    outcome_statuses: dict[str, int] = field(default_factory=dict)
    outbound_caught_up: bool = True

    def as_stats(self) -> dict[str, Any]:
        return asdict(self)


def _values(view: KafkaView, topic: str, since: datetime) -> Iterator[dict[str, Any]]:
    tps = view.partitions([topic])
    starts = view.offsets_at(tps, since)
    marks = view.watermarks(tps)
    for tp in tps:
        start = starts[tp]
        if start is None:
            continue
        for _, value, _ in view.records(tp, start, marks[tp][1]):
            if value:
                try:
                    doc = json.loads(value)
                except ValueError:
                    continue
                if isinstance(doc, dict):
                    yield doc


def wait_for_group(
    view: KafkaView,
    group: str,
    topic: str,
    *,
    timeout: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """True once `group` has committed up to the topic's current end on every partition."""
    tps = view.partitions([topic])
    target = {tp: high for tp, (_, high) in view.watermarks(tps).items()}
    deadline = time.monotonic() + timeout
    while True:
        done = view.committed(group, tps)
        if all((done.get(tp) or 0) >= high for tp, high in target.items() if high > 0):
            return True
        if time.monotonic() >= deadline:
            return False
        sleep(1.0)


def summarise(
    view: KafkaView,
    topics: Topics,
    *,
    started: datetime,
    tenants: tuple[uuid.UUID, ...] | None,
    outbound_group: str,
    outbound_timeout: float,
) -> Summary:
    wanted = {str(t) for t in tenants} if tenants else None

    def mine(doc: dict[str, Any]) -> bool:
        return wanted is None or str(doc.get("tenant_id")) in wanted

    summary = Summary()
    leads: set[str] = set()
    for doc in _values(view, topics.lead_changes, started):
        if mine(doc):
            summary.lead_changes += 1
            leads.add(str(doc.get("lead_id")))
    summary.leads_changed = len(leads)
    commands: set[str] = set()
    for doc in _values(view, topics.touchpoint_commands, started):
        if doc.get("record_only") is True and mine(doc):
            commands.add(str(doc.get("command_id")))
    summary.commands_reemitted = len(commands)
    if commands:
        summary.outbound_caught_up = wait_for_group(
            view, outbound_group, topics.touchpoint_commands, timeout=outbound_timeout
        )
    statuses: Counter[str] = Counter()
    decided: set[str] = set()
    for doc in _values(view, topics.touchpoint_outcomes, started):
        cid = str(doc.get("command_id"))
        if cid not in commands or cid in decided:
            continue
        decided.add(cid)
        status = str(doc.get("status"))
        statuses[status] += 1
        if doc.get("duplicate") is True:
            summary.skipped_already_done += 1
        elif status == "recorded":
            summary.recorded += 1
        elif status == "sent":
            summary.sent += 1
    summary.outcomes = len(decided)
    summary.outcome_statuses = dict(statuses)
    return summary
