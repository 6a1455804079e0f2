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

import bisect
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.base import Channel
from services.common.domain.send_windows import SendWindowPolicy
from services.sequencer.domain.campaigns import (
    NO_CAMPAIGNS,
    Campaign,
    CampaignAt,
    CampaignPlan,
    CampaignPlans,
)

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


T = TypeVar("T")


def in_force(versions: tuple[tuple[datetime, T], ...], at: datetime, current: T, before: T) -> T:
    """The version in force at `at`: `current` (what the tenant's row says now) from the
    latest version on, the latest version set at or before `at` before that, and `before`
    (what a tenant had before its first version) when `at` precedes them all."""
    if not versions or at >= versions[-1][0]:
        return current
    i = bisect.bisect_right([v[0] for v in versions], at)
    return versions[i - 1][1] if i else before


@dataclass(frozen=True, slots=True)
class TenantConfig:
    """What the sequencer follows for one tenant: its plan and its send windows.

    `plan` and `campaigns` are the plans in force now; `plan_versions` and `campaign_versions`
    (DESIGN §12: plans are versioned) are the versions an operator set, oldest first, so a
    lead follows the nurture plan in force when it was created and a campaign run the plan in
    force at its anchor (`plan_at`, `campaign_at`), also in a replay. Without versions both
    are `plan` and `campaigns`."""

    tenant_id: uuid.UUID
    plan: NurturePlan
    policy: SendWindowPolicy
    known: bool = True  # False: not in `tenants`, defaults applied
    campaigns: CampaignPlans = NO_CAMPAIGNS
    plan_versions: tuple[tuple[datetime, NurturePlan], ...] = ()
    campaign_versions: tuple[tuple[Campaign, tuple[tuple[datetime, CampaignPlan], ...]], ...] = ()

    def plan_at(self, at: datetime) -> NurturePlan:
        """The nurture plan in force at `at` (a lead's creation, event time)."""
        return in_force(self.plan_versions, at, self.plan, DEFAULT_PLAN)

    def campaign_at(self, campaign: Campaign, at: datetime) -> CampaignPlan:
        """The plan of `campaign` in force at `at` (a run's anchor, event time)."""
        current = self.campaigns.of(campaign)
        for c, versions in self.campaign_versions:
            if c is campaign:
                return in_force(versions, at, current, NO_CAMPAIGNS.of(campaign))
        return current

    def campaigns_at(self, at: datetime) -> CampaignPlans:
        """Every campaign's plan in force at `at`."""
        return CampaignPlans(**{c.value: self.campaign_at(c, at) for c in Campaign})

    @property
    def campaign_history(self) -> CampaignAt | None:
        """What the planner asks for a run's plan (None: no versions, `campaigns` alone)."""
        return self.campaign_at if self.campaign_versions else None


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


def plan_document(plan: NurturePlan) -> dict[str, Any]:
    """The JSON a nurture plan is written as (what `parse_plan` reads back, every field)."""
    return {
        "name": plan.name,
        "steps": [
            {
                "after_minutes": _minutes(s.after),
                "channel": s.channel.value,
                "template": s.template,
            }
            for s in plan.steps
        ],
        "lost_after_minutes": _minutes(plan.lost_after),
        "min_gap_minutes": _minutes(plan.min_gap),
        "max_late_minutes": _minutes(plan.max_late),
    }


def _minutes(d: timedelta) -> int:
    return int(d.total_seconds() // 60)
