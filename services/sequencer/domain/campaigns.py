"""Campaigns after the estimate (DESIGN §12): declined work, review request, appointment
reminder. Pure: what a lead's facts trigger, and which campaign steps are due when.

A campaign is a trigger, a plan and stop conditions, run by the same sequencer, gate, ledger
and replay machinery as the estimate nurture plan (`planner.py`), which stays as it was:
- *declined work*: the order was invoiced (or paid) with services declined or deferred (not
  excluded from the deferred list); steps count from the first event that showed it; it stops
  when every such service was revived on a later order, when the customer came back (a later
  order of theirs at this location), replied or clicked, or has no channel left;
- *review request*: once the order is paid; steps count from the first event that showed it;
  it stops when the customer replied or clicked (the review link is a click);
- *appointment reminder*: `before` the appointment's start; a moved appointment is a new run
  (the old run's steps are never emitted again: its command ids differ, `run_id`), a cancelled
  one has none, nor has one whose reminder Shopmonkey sends itself.

Every part of the facts only grows (times are the earliest seen, sets are unions, the
appointment record is last-writer-wins by its own version and time), so any order or repetition
of the same events ends in the same facts, as for the lead itself (`lead.py`).

A step's channel may be `None`: the customer's preferred channel (SMS when they said SMS and
have a phone, else email when they have an address, else SMS). The outbound gate still decides
(consent, whitelist, windows, the frequency cap across campaigns).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.base import Channel
from schemas.bounds import MAX_CENTS


class Campaign(StrEnum):
    DECLINED = "declined"
    REVIEW = "review"
    APPOINTMENT = "appointment"


@dataclass(frozen=True, slots=True)
class CampaignStep:
    after: timedelta  # from the run's anchor (negative: before it, an appointment's start)
    channel: Channel | None  # None: the customer's preferred channel
    template: str


@dataclass(frozen=True, slots=True)
class CampaignPlan:
    campaign: Campaign
    steps: tuple[CampaignStep, ...]
    enabled: bool = True
    #: a step this late (worker down, history replayed) is marked missed, not sent
    max_late: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class CampaignPlans:
    declined: CampaignPlan
    review: CampaignPlan
    appointment: CampaignPlan

    def of(self, campaign: Campaign) -> CampaignPlan:
        plan: CampaignPlan = getattr(self, campaign.value)
        return plan


#: The plan of a campaign in force at an instant (`TenantConfig.campaign_at`).
CampaignAt = Callable[[Campaign, datetime], CampaignPlan]

_DAY = timedelta(days=1)

#: Defaults after the peers (reference/shopmonkey.md §5): declined work +30, +60, +90 days;
#: one review ask 2 h after payment and at most one reminder; a reminder 24 h before.
DEFAULT_CAMPAIGNS = CampaignPlans(
    declined=CampaignPlan(
        Campaign.DECLINED,
        (
            CampaignStep(30 * _DAY, Channel.EMAIL, "declined_email_first"),
            CampaignStep(60 * _DAY, Channel.SMS, "declined_sms_second"),
            CampaignStep(90 * _DAY, Channel.EMAIL, "declined_email_last"),
        ),
        max_late=3 * _DAY,
    ),
    review=CampaignPlan(
        Campaign.REVIEW,
        (
            CampaignStep(timedelta(hours=2), None, "review_request"),
            CampaignStep(3 * _DAY, None, "review_reminder"),
        ),
    ),
    appointment=CampaignPlan(
        Campaign.APPOINTMENT,
        (CampaignStep(-_DAY, None, "appointment_reminder"),),
        max_late=timedelta(hours=20),
    ),
)


#: What a tenant has until it turns a campaign on: every campaign off.
NO_CAMPAIGNS = CampaignPlans(
    declined=replace(DEFAULT_CAMPAIGNS.declined, enabled=False),
    review=replace(DEFAULT_CAMPAIGNS.review, enabled=False),
    appointment=replace(DEFAULT_CAMPAIGNS.appointment, enabled=False),
)


class CampaignPlanError(ValueError):
    """A tenant's campaign plans are not valid; the message says where."""


class _StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    after_minutes: int = Field(ge=-30 * 24 * 60, le=366 * 24 * 60)
    channel: Channel | Literal["preferred"] = "preferred"
    template: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _CampaignSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    steps: list[_StepSpec] | None = Field(default=None, min_length=1, max_length=10)
    max_late_minutes: int | None = Field(default=None, ge=1, le=30 * 24 * 60)

    @model_validator(mode="after")
    def _ordered(self) -> _CampaignSpec:
        offsets = [s.after_minutes for s in self.steps or ()]
        if offsets != sorted(offsets):
            raise ValueError("steps must be ordered by after_minutes")
        return self


class _PlansSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    declined: _CampaignSpec | None = None
    review: _CampaignSpec | None = None
    appointment: _CampaignSpec | None = None


def parse_campaigns(raw: Mapping[str, Any] | None) -> CampaignPlans:
    """A tenant's `campaign_plans` JSONB: per campaign `{"enabled": true}` turns the default
    plan on; `steps` (after_minutes from the trigger, channel email|sms|preferred, template)
    and `max_late_minutes` change it. A campaign not named is off. Raises CampaignPlanError."""
    if raw is None:
        return NO_CAMPAIGNS
    try:
        spec = _PlansSpec.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<plans>"
        raise CampaignPlanError(f"campaign_plans.{where}: {first['msg']}") from None
    plans = {}
    for campaign in Campaign:
        default = DEFAULT_CAMPAIGNS.of(campaign)
        given: _CampaignSpec | None = getattr(spec, campaign.value)
        if given is None:
            plans[campaign.value] = replace(default, enabled=False)
            continue
        steps = default.steps
        if given.steps is not None:
            steps = tuple(
                CampaignStep(
                    timedelta(minutes=s.after_minutes),
                    None if s.channel == "preferred" else Channel(s.channel),
                    s.template,
                )
                for s in given.steps
            )
        late = default.max_late
        if given.max_late_minutes is not None:
            late = timedelta(minutes=given.max_late_minutes)
        plans[campaign.value] = CampaignPlan(campaign, steps, given.enabled, late)
    return CampaignPlans(**plans)


def plans_document(plans: CampaignPlans) -> dict[str, Any]:
    """The JSON a tenant's plans are written as (what `parse_campaigns` reads back)."""
    return {campaign.value: campaign_document(plans.of(campaign)) for campaign in Campaign}


def campaign_document(plan: CampaignPlan) -> dict[str, Any]:
    """One campaign's part of `campaign_plans`, every field written out."""
    return {
        "enabled": plan.enabled,
        "steps": [
            {
                "after_minutes": int(s.after.total_seconds() // 60),
                "channel": s.channel.value if s.channel is not None else "preferred",
                "template": s.template,
            }
            for s in plan.steps
        ],
        "max_late_minutes": int(plan.max_late.total_seconds() // 60),
    }


def parse_campaign(campaign: Campaign, raw: Mapping[str, Any]) -> CampaignPlan:
    """One campaign's part of `campaign_plans` (a stored version); raises CampaignPlanError."""
    return parse_campaigns({campaign.value: raw}).of(campaign)


@dataclass(frozen=True, slots=True)
class DeclinedService:
    name: str | None
    total_cents: int


#: (version or -1, occurred epoch ms, event id): the latest appointment record wins.
AppointmentKey = tuple[int, int, str]


@dataclass(frozen=True, slots=True)
class AppointmentFacts:
    key: AppointmentKey
    start_at: datetime
    cancelled: bool
    shopmonkey_reminder: bool


@dataclass(slots=True)
class CampaignFacts:
    """What a lead's events said that campaigns read. Every part only grows."""

    paid_at: datetime | None = None
    declined_at: datetime | None = None  # first event showing the order invoiced with declines
    declined: dict[str, DeclinedService] = field(default_factory=dict)
    revived: set[str] = field(default_factory=set)  # declined services a later order revived
    returned_at: datetime | None = None  # the customer's later order (they came back)
    engaged_at: datetime | None = None  # replied, clicked, opened a chat
    appointments: dict[str, AppointmentFacts] = field(default_factory=dict)

    def copy(self) -> CampaignFacts:
        return CampaignFacts(
            self.paid_at,
            self.declined_at,
            dict(self.declined),
            set(self.revived),
            self.returned_at,
            self.engaged_at,
            dict(self.appointments),
        )


@dataclass(frozen=True, slots=True)
class DeclinedWork:
    """What the dashboard shows of a lead's declined work: the declined (or deferred) services
    and their value, and those a later order revived (their value as declined). Values are
    capped at `bounds.MAX_CENTS` (what the contract and a BIGINT column hold)."""

    services: int = 0
    cents: int = 0
    revived_services: int = 0
    revived_cents: int = 0


def declined_work(facts: CampaignFacts | None) -> DeclinedWork:
    if facts is None or not facts.declined:
        return DeclinedWork()
    revived = [s for sid, s in facts.declined.items() if sid in facts.revived]
    return DeclinedWork(
        len(facts.declined),
        min(sum(s.total_cents for s in facts.declined.values()), MAX_CENTS),
        len(revived),
        min(sum(s.total_cents for s in revived), MAX_CENTS),
    )


def earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    return a if b is None or a <= b else b


def latest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


@dataclass(frozen=True, slots=True)
class Run:
    """One campaign run of a lead, active now: its id (the command ids' campaign part), its
    plan and the instant its offsets count from."""

    run_id: str
    plan: CampaignPlan
    anchor: datetime
    context: tuple[tuple[str, object], ...] = ()


#: The id of an order's own appointment (its `appointmentDates`): "order:<order id>".
ORDER_APPOINTMENT = "order:"


def appointment_run_id(appointment_id: str, start_at: datetime) -> str:
    """A run per appointment AND start: a moved appointment gets new command ids."""
    return f"{Campaign.APPOINTMENT.value}:{appointment_id}@{int(start_at.timestamp())}"


def active_runs(
    facts: CampaignFacts,
    plans: CampaignPlans,
    *,
    no_channel: bool,
    plan_at: CampaignAt | None = None,
) -> list[Run]:
    """The runs whose steps may still be emitted, in a fixed order (run id). `plans`: the
    plans in force now; `plan_at`: a campaign's plan in force at an instant (its versions),
    which gives each run the plan in force at its anchor. A campaign off now has no run (an
    operator turning it off stops it at once), nor has one off at the run's anchor."""
    if no_channel:
        return []

    def plan(campaign: Campaign, anchor: datetime) -> CampaignPlan | None:
        current = plans.of(campaign)
        if not current.enabled:
            return None
        at_anchor = current if plan_at is None else plan_at(campaign, anchor)
        return at_anchor if at_anchor.enabled else None

    runs: list[Run] = []
    stopped_by_customer = facts.engaged_at is not None
    open_declines = sorted(set(facts.declined) - facts.revived)
    if (
        facts.declined_at is not None
        and open_declines
        and not stopped_by_customer
        and (facts.returned_at is None or facts.returned_at <= facts.declined_at)
        and (declined := plan(Campaign.DECLINED, facts.declined_at)) is not None
    ):
        services = [facts.declined[s] for s in open_declines]
        runs.append(
            Run(
                Campaign.DECLINED.value,
                declined,
                facts.declined_at,
                (
                    ("declined_services", tuple(s.name for s in services if s.name)),
                    ("declined_cents", sum(s.total_cents for s in services)),
                ),
            )
        )
    if (
        facts.paid_at is not None
        and not stopped_by_customer
        and (review := plan(Campaign.REVIEW, facts.paid_at)) is not None
    ):
        runs.append(Run(Campaign.REVIEW.value, review, facts.paid_at))
    if plans.appointment.enabled:
        # an order's appointmentDates stand for its appointment only while no appointment
        # record of the order is known (the record says more: moves, cancellation, reminders)
        records = any(not a.startswith(ORDER_APPOINTMENT) for a in facts.appointments)
        for appointment_id, appt in sorted(facts.appointments.items()):
            if appt.cancelled or appt.shopmonkey_reminder:
                continue
            if records and appointment_id.startswith(ORDER_APPOINTMENT):
                continue
            reminder = plan(Campaign.APPOINTMENT, appt.start_at)
            if reminder is None:
                continue
            runs.append(
                Run(
                    appointment_run_id(appointment_id, appt.start_at),
                    reminder,
                    appt.start_at,
                    (("appointment_at", appt.start_at.astimezone(UTC).isoformat()),),
                )
            )
    return sorted(runs, key=lambda r: r.run_id)


def preferred_channel(preferred: str | None, email: str | None, phone: str | None) -> Channel:
    """The channel a "preferred" step goes on."""
    if preferred == "sms" and phone:
        return Channel.SMS
    if email:
        return Channel.EMAIL
    return Channel.SMS
