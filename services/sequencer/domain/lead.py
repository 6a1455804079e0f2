"""The lead as the sequencer holds it: a small value whose parts only ever grow (a join
semilattice), so any order or repetition of the same signals ends in the same lead.

- `stage` is the furthest business progress seen (max), with its reason;
- channel switches only turn off (an opt-out is never undone by the sequencer: fail-closed);
- order and customer facts are last-writer-wins by the event's own version/time;
- each touch-point step's status only moves up (`StepStatus` order);
- `exhausted` (plan ran out without engagement) is sticky.

The visible `LeadState` is derived from those parts (`derive_state`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import IntEnum
from typing import Any

from schemas.base import Channel, LeadState
from schemas.events import OrderSource
from services.sequencer.domain.campaigns import CampaignFacts


class Stage(IntEnum):
    """Business progress; the derived state never ranks lower after any signal."""

    NEW = 0
    CONTACTED = 1
    ENGAGED = 3
    QUALIFIED = 4
    APPOINTMENT_SET = 5
    LOST = 6  # the shop says so: order deleted/archived, marked lost
    COMPLETED = 7


_STAGE_STATE = {
    Stage.NEW: LeadState.NEW,
    Stage.CONTACTED: LeadState.CONTACTED,
    Stage.ENGAGED: LeadState.ENGAGED,
    Stage.QUALIFIED: LeadState.QUALIFIED,
    Stage.APPOINTMENT_SET: LeadState.APPOINTMENT_SET,
    Stage.LOST: LeadState.LOST,
    Stage.COMPLETED: LeadState.COMPLETED,
}


class StepStatus(IntEnum):
    """Where one step of the plan stands; only moves up."""

    EMITTED = 1  # command published, no outcome yet
    DEFERRED = 2  # outbound: outside the window, re-emit the same command at `until`
    UNKNOWN = 3  # outbound crashed mid-send and could not reconcile
    MISSED = 4  # never emitted: channel off, or too late (worker was down)
    SKIPPED = 5
    FAILED = 6
    RECORDED = 7  # record-only replay: allowed, nothing sent
    SENT = 8


@dataclass(slots=True)
class StepRecord:
    status: StepStatus
    reason: str = ""
    due: datetime | None = None  # due_at of the last emission of this step's command
    emitted_at: datetime | None = None  # wall clock of the first emission
    emits: int = 0
    until: datetime | None = None  # latest deferred_until seen
    decided_at: datetime | None = None  # outbound's decision time (sent → last touch)


@dataclass(slots=True)
class Customer:
    customer_id: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    preferred: str | None = None  # "sms" | "email" | "all" (Shopmonkey's preferredContactMethod)


#: LWW keys: (order version or -1, occurred epoch ms, event id) / (occurred ms, event id).
OrderKey = tuple[int, int, str]
EventKey = tuple[int, str]


@dataclass(slots=True)
class Lead:
    lead_id: uuid.UUID
    tenant_id: uuid.UUID
    created_at: datetime  # earliest creation time seen (event time): steps count from here
    updated_at: datetime  # latest event time applied
    source: OrderSource = OrderSource.WEBHOOK
    origin: EventKey = (0, "")  # the earliest event seen (its source is the lead's)
    stage: Stage = Stage.NEW
    stage_reason: str = "created"
    exhausted: bool = False
    email_off: str | None = None  # why email is off (opted_out, bounced, …)
    sms_off: str | None = None
    nurture: bool = False  # some event asked for touch points (backfill history does not)
    order_key: OrderKey | None = None
    order_id: str | None = None
    order_number: str | None = None
    order_status: str | None = None
    vehicle: str | None = None
    services: list[str] = field(default_factory=list)
    customer_key: EventKey | None = None
    customer: Customer = field(default_factory=Customer)
    interest_key: EventKey | None = None
    service_of_interest: str | None = None
    steps: dict[int, StepRecord] = field(default_factory=dict)
    version: int = 0
    seen: list[str] = field(default_factory=list)  # recent event ids (bounded dedupe memory)
    replay_id: str | None = None  # the last replay that touched this lead (hex of its id)
    #: An operator's latest stop or resume: (its order key, stopped). The order key sorts by
    #: the signal's time, then a stop before a resume of the same instant, then the signal id,
    #: so any order of arrival (a replay, a re-delivery) ends in the same pause.
    pause: tuple[str, bool] | None = None
    #: What campaigns read (`campaigns.py`); None until an event says anything of it.
    facts: CampaignFacts | None = None
    #: Each campaign run's steps, by run id (`campaigns.Run.run_id`), as `steps` for the plan.
    runs: dict[str, dict[int, StepRecord]] = field(default_factory=dict)

    def copy(self, **changes: object) -> Lead:
        """A shallow copy, far cheaper than `dataclasses.replace` (which re-runs __init__);
        containers are shared: copy them before changing them (see `lifecycle.clone`)."""
        new = _copy_fields(self)
        for name, value in changes.items():
            setattr(new, name, value)
        return new

    @property
    def paused(self) -> bool:
        """An operator stopped its sequence (until resumed)."""
        return self.pause is not None and self.pause[1]

    def channel_off(self, channel: Channel) -> str | None:
        return self.email_off if channel is Channel.EMAIL else self.sms_off

    @property
    def touches_sent(self) -> int:
        return sum(1 for s in self.steps.values() if s.status is StepStatus.SENT)

    @property
    def last_touch_at(self) -> datetime | None:
        sent = [s.decided_at for s in self.steps.values() if s.status is StepStatus.SENT]
        return max((d for d in sent if d is not None), default=None)


_LEAD_FIELDS = tuple(f.name for f in fields(Lead))


def _field_copier() -> Callable[[Lead], Lead]:
    """`copy`'s body, one plain slot assignment per field, generated from the dataclass's own
    field list (as `dataclasses` builds `__init__`), cheaper than a loop of getattr/setattr."""
    lines = [f"    new.{name} = lead.{name}" for name in _LEAD_FIELDS]
    source = "def copy_fields(lead):\n    new = new_lead(Lead)\n" + "\n".join(lines)
    namespace: dict[str, Any] = {"Lead": Lead, "new_lead": object.__new__}
    exec(source + "\n    return new\n", namespace)  # noqa: S102 (our own field names)
    copier: Callable[[Lead], Lead] = namespace["copy_fields"]
    return copier


_copy_fields = _field_copier()


def derive_state(lead: Lead) -> tuple[LeadState, str | None]:
    """The visible state and, for `lost`, why."""
    if lead.stage >= Stage.ENGAGED:
        state = _STAGE_STATE[lead.stage]
        return state, (lead.stage_reason if state is LeadState.LOST else None)
    if lead.exhausted:
        return LeadState.LOST, "no_engagement"
    if lead.email_off and lead.sms_off:
        return LeadState.LOST, "opted_out"
    return _STAGE_STATE[lead.stage], None


def sequence_stopped(lead: Lead) -> bool:
    """No more touch points: engaged or further, lost, no channel left, or stopped by an
    operator."""
    return (
        lead.paused
        or lead.stage >= Stage.ENGAGED
        or lead.exhausted
        or bool(lead.email_off and lead.sms_off)
    )
