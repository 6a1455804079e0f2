"""Nurture plans (DESIGN §5): which touch point goes out when, counted from lead creation.

A tenant's plan lives in `tenants.nurture_plan` (JSONB) and is validated here; a missing plan
means the default plan shipped with the project. Offsets are minutes after the lead was
created (event time), so a replay or a late event plans the same instants.

JSON form::

    {"name": "spring-promo",
     "steps": [{"after_minutes": 0, "channel": "email", "template": "nurture_email_welcome"},
               {"after_minutes": 120, "channel": "sms", "template": "nurture_sms_followup"}],
     "lost_after_minutes": 20160,     # sequence exhausted without engagement → lost
     "min_gap_minutes": 60,           # optional: at least this long between two touch points
     "max_late_minutes": 1440}        # optional: a step this late (worker down) is not sent
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.base import Channel
from services.common.domain.send_windows import SendWindowPolicy

MINUTE = timedelta(minutes=1)


class PlanError(ValueError):
    """A tenant's nurture plan is not valid; the message says where."""


@dataclass(frozen=True, slots=True)
class PlanStep:
    after: timedelta
    channel: Channel
    template: str


@dataclass(frozen=True, slots=True)
class NurturePlan:
    steps: tuple[PlanStep, ...]
    lost_after: timedelta
    min_gap: timedelta = timedelta(hours=1)
    max_late: timedelta = timedelta(hours=24)
    name: str = "default"


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """What the sequencer follows for one tenant: its plan and its send windows."""

    tenant_id: uuid.UUID
    plan: NurturePlan
    policy: SendWindowPolicy
    known: bool = True  # False: not in `tenants`, defaults applied


DEFAULT_PLAN = NurturePlan(
    name="default",
    steps=(
        PlanStep(timedelta(0), Channel.EMAIL, "nurture_email_welcome"),
        PlanStep(timedelta(hours=2), Channel.SMS, "nurture_sms_followup"),
        PlanStep(timedelta(days=1), Channel.EMAIL, "nurture_email_reminder"),
        PlanStep(timedelta(days=3), Channel.SMS, "nurture_sms_checkin"),
        PlanStep(timedelta(days=7), Channel.EMAIL, "nurture_email_last_chance"),
    ),
    lost_after=timedelta(days=14),
)


class _StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_minutes: int = Field(ge=0, le=90 * 24 * 60)
    channel: Channel
    template: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,100}$")


class _PlanSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(default="custom", min_length=1, max_length=100)
    steps: list[_StepSpec] = Field(min_length=1, max_length=20)
    lost_after_minutes: int = Field(ge=1, le=180 * 24 * 60)
    min_gap_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60)
    max_late_minutes: int = Field(default=24 * 60, ge=1, le=30 * 24 * 60)

    @model_validator(mode="after")
    def _ordered(self) -> _PlanSpec:
        offsets = [s.after_minutes for s in self.steps]
        if offsets != sorted(offsets):
            raise ValueError("steps must be ordered by after_minutes")
        if self.lost_after_minutes < offsets[-1]:
            raise ValueError("lost_after_minutes must not precede the last step")
        return self


def parse_plan(raw: Mapping[str, Any] | None) -> NurturePlan:
    """The plan a tenant's JSONB describes (None → the default plan); raises PlanError."""
    if raw is None:
        return DEFAULT_PLAN
    try:
        spec = _PlanSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<plan>"
        raise PlanError(f"nurture_plan.{where}: {first['msg']}") from None
    return NurturePlan(
        name=spec.name,
        steps=tuple(PlanStep(s.after_minutes * MINUTE, s.channel, s.template) for s in spec.steps),
        lost_after=spec.lost_after_minutes * MINUTE,
        min_gap=spec.min_gap_minutes * MINUTE,
        max_late=spec.max_late_minutes * MINUTE,
    )
