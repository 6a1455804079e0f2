"""A replayed record as the sequencer handles it (agreement with `leadctl replay`), pure.

The replay tool rewinds the sequencer's consumer group and records a run
(`services.common.domain.replay.ReplayRun`): records of a source partition at offsets below
`end_offsets["<topic>:<partition>"]` (the high watermark when the replay was requested) are
*replayed* records. For such a record:
- its tenant not in `tenants` (when set) → skipped entirely: no state change, no output;
- otherwise applied in REPLAY mode: every command emitted carries `record_only=true`; the
  first replayed order event touching a lead created at or after `since` resets it (the lead
  is stamped with the replay id), so its state is re-derived through the current logic; a
  lead created before `since` is only stamped and the records are re-applied (idempotent).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ReplayContext:
    """Passed to the use cases with each replayed record (None: a live record)."""

    replay_id: uuid.UUID
    since: datetime

    @property
    def stamp(self) -> str:
        return self.replay_id.hex


@dataclass(slots=True)
class ReplayStats:
    events_reread: int = 0
    events_skipped: int = 0
    leads_reset: int = 0
    leads_changed: int = 0
    commands_reemitted: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "events_reread": self.events_reread,
            "events_skipped": self.events_skipped,
            "leads_reset": self.leads_reset,
            "leads_changed": self.leads_changed,
            "commands_reemitted": self.commands_reemitted,
        }

    def take(self) -> dict[str, int]:
        """The counts so far, zeroing them (deltas are added to the row by each worker)."""
        out = self.as_dict()
        self.events_reread = self.events_skipped = self.leads_reset = 0
        self.leads_changed = self.commands_reemitted = 0
        return out

    def empty(self) -> bool:
        return not any(self.as_dict().values())
