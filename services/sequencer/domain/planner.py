"""The nurture planner (DESIGN §5): which of a lead's steps are due now, pure.

Rules:
- step i is due at `created_at + after_i` (event time), no sooner than `min_gap` after the
  previous touch point went out, moved to the next opening of its channel's send window
  (SMS 8:00–21:00 local or stricter, email in the location's hours): never dropped for being
  outside the window;
- steps go out in order, each at most once; a deferred step (outbound answered `deferred`)
  is re-emitted as the SAME command at its `deferred_until`, also inside the window;
- a step whose channel is off, or that is more than `max_late` overdue (the worker was down,
  or history was replayed), is marked missed instead of sent late;
- the sequence stops when the lead is engaged or further, lost, or has no channel left;
  `lost_after` without engagement marks the lead exhausted (→ lost).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.base import Channel
from services.common.domain.send_windows import SendWindowPolicy, next_opening
from services.sequencer.domain.campaigns import (
    NO_CAMPAIGNS,
    Campaign,
    CampaignAt,
    CampaignPlans,
    CampaignStep,
    Run,
    active_runs,
    preferred_channel,
)
from services.sequencer.domain.lead import Lead, Stage, StepRecord, StepStatus, sequence_stopped
from services.sequencer.domain.lifecycle import clone
from services.sequencer.domain.plan import NurturePlan

#: A deferred step is re-emitted at most this many times (outbound keeps deferring → give up).
MAX_EMITS = 10


@dataclass(frozen=True, slots=True)
class DueCommand:
    """One touch point to publish now (a re-emission carries the same command id)."""

    step_index: int
    channel: Channel
    template: str
    due_at: datetime
    reemit: bool = False
    campaign: str | None = None  # the campaign run (None: the estimate nurture plan)
    context: tuple[tuple[str, object], ...] = ()  # the run's facts for the template


@dataclass(frozen=True, slots=True)
class Evaluation:
    lead: Lead
    commands: tuple[DueCommand, ...] = ()
    exhausted: bool = False  # this evaluation ended the sequence without engagement
    #: (index, due) of the first step found not due yet: `next_due` need not compute it again
    upcoming: tuple[int, datetime] | None = None


_DAY = timedelta(days=1)
_ONE_HOUR = timedelta(hours=1)


def opening(channel: Channel, at: datetime, policy: SendWindowPolicy) -> datetime:
    """`next_opening`, with a fast path for the common case: `at` is inside the window of its
    local day and the zone's UTC offset is the same a day before and after (no DST change
    near, so local wall-clock comparison is exact). Anything else takes the full search."""
    window = policy.hours(channel)
    tz = _zone(policy.timezone)
    local = at.astimezone(tz)
    hours = window.get(local.weekday())
    if (
        hours is not None
        and hours[0] <= local.time() < hours[1]
        and _steady(tz, at)
        and (not policy.closed or local.date() not in policy.closed)
    ):
        return at.astimezone(UTC)
    return next_opening(channel, at, policy)


_HOUR = 3600
_STEADY: dict[tuple[str, int], bool] = {}


def _steady(tz: ZoneInfo, at: datetime) -> bool:
    """No UTC offset change within a day of `at`: the same offset a day before the start of
    `at`'s UTC hour, at its start, at its end and a day after (transitions are months apart,
    so equal offsets at those points mean none in between). Cached per zone and hour."""
    hour = int(at.timestamp()) // _HOUR
    key = (tz.key, hour)
    steady = _STEADY.get(key)
    if steady is None:
        start = datetime.fromtimestamp(hour * _HOUR, UTC)
        offsets = {
            moment.astimezone(tz).utcoffset()
            for moment in (start - _DAY, start, start + _ONE_HOUR, start + _ONE_HOUR + _DAY)
        }
        steady = len(offsets) == 1
        if len(_STEADY) >= 100_000:
            _STEADY.clear()
        _STEADY[key] = steady
    return steady


def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo caches instances by key


def _last_emission(lead: Lead, before: int) -> datetime | None:
    times = [r.emitted_at for i, r in lead.steps.items() if i < before and r.emitted_at]
    return max((t for t in times if t is not None), default=None)


def _next_index(lead: Lead, plan: NurturePlan) -> int | None:
    for i in range(len(plan.steps)):
        if i not in lead.steps:
            return i
    return None


def step_due(lead: Lead, plan: NurturePlan, index: int, policy: SendWindowPolicy) -> datetime:
    """When step `index` is due: its offset from creation, the gap, then the window."""
    step = plan.steps[index]
    earliest = lead.created_at + step.after
    previous = _last_emission(lead, index)
    if previous is not None:
        earliest = max(earliest, previous + plan.min_gap)
    return opening(step.channel, earliest, policy)


def _reemit_at(index: int, rec: StepRecord, lead: Lead, plan: NurturePlan) -> datetime | None:
    if index >= len(plan.steps) or lead.channel_off(plan.steps[index].channel):
        return None
    if rec.status is not StepStatus.DEFERRED or rec.until is None or rec.emits >= MAX_EMITS:
        return None
    if rec.due is not None and rec.until <= rec.due:
        return None  # already re-emitted for this deferral
    if rec.until >= lead.created_at + plan.lost_after:
        return None
    return rec.until


def _active(lead: Lead) -> bool:
    return lead.nurture and not sequence_stopped(lead)


def evaluate(
    lead: Lead,
    plan: NurturePlan,
    policy: SendWindowPolicy,
    now: datetime,
    campaigns: CampaignPlans = NO_CAMPAIGNS,
    campaign_at: CampaignAt | None = None,
) -> Evaluation:
    """What is due for `lead` at `now` (its nurture plan, then its campaigns), and the lead
    with those emissions recorded. `plan`: the nurture plan in force at the lead's creation;
    `campaign_at`: a campaign's plan in force at an instant (its versions; None: `campaigns`
    alone), asked for each run's plan at its anchor."""
    ev = _evaluate_nurture(lead, plan, policy, now)
    if ev.lead.facts is None:
        return ev
    out, commands = _evaluate_campaigns(ev.lead, campaigns, policy, now, campaign_at)
    if not commands and out is ev.lead:
        return ev
    return dataclasses.replace(ev, lead=out, commands=ev.commands + tuple(commands))


def _evaluate_nurture(
    lead: Lead, plan: NurturePlan, policy: SendWindowPolicy, now: datetime
) -> Evaluation:
    if not _active(lead):
        return Evaluation(lead)
    if lead.stage < Stage.ENGAGED and now >= lead.created_at + plan.lost_after:
        out = clone(lead)
        out.exhausted = True
        return Evaluation(out, exhausted=True)
    out = clone(lead)
    commands: list[DueCommand] = []
    for done, rec in sorted(out.steps.items()):
        at = _reemit_at(done, rec, out, plan)
        if at is None:
            continue
        step = plan.steps[done]
        due = opening(step.channel, at, policy)
        if due <= now:
            out.steps[done] = dataclasses.replace(rec, due=due, emits=rec.emits + 1)
            commands.append(DueCommand(done, step.channel, step.template, due, reemit=True))
    changed = bool(commands)
    upcoming: tuple[int, datetime] | None = None
    while (index := _next_index(out, plan)) is not None:
        step = plan.steps[index]
        off = out.channel_off(step.channel)
        if off:
            out.steps[index] = StepRecord(StepStatus.MISSED, reason=f"channel_off:{off}")
            changed = True
            continue
        due = step_due(out, plan, index, policy)
        if due > now:
            upcoming = (index, due)
            break
        if now - due > plan.max_late:
            out.steps[index] = StepRecord(StepStatus.MISSED, reason="too_late")
        else:
            out.steps[index] = StepRecord(StepStatus.EMITTED, due=due, emitted_at=now, emits=1)
            commands.append(DueCommand(index, step.channel, step.template, due))
        changed = True
    return Evaluation(out if changed else lead, tuple(commands), upcoming=upcoming)


def next_due(
    lead: Lead,
    plan: NurturePlan,
    policy: SendWindowPolicy,
    upcoming: tuple[int, datetime] | None = None,
    campaigns: CampaignPlans = NO_CAMPAIGNS,
    campaign_at: CampaignAt | None = None,
) -> datetime | None:
    """The next instant at which `evaluate` may act on `lead` (None: never, unless a new
    signal arrives). Used to index leads by due time. `upcoming`: `Evaluation.upcoming` of
    this very lead (its steps unchanged since), which saves computing that step's due time."""
    nurture = _next_nurture_due(lead, plan, policy, upcoming)
    if lead.facts is None:
        return nurture
    later = _next_campaign_due(lead, campaigns, policy, campaign_at)
    if nurture is None or (later is not None and later < nurture):
        return later
    return nurture


def _next_nurture_due(
    lead: Lead,
    plan: NurturePlan,
    policy: SendWindowPolicy,
    upcoming: tuple[int, datetime] | None,
) -> datetime | None:
    if not _active(lead):
        return None
    candidates: list[datetime] = []
    if lead.stage < Stage.ENGAGED:
        candidates.append(lead.created_at + plan.lost_after)
    for done, rec in lead.steps.items():
        at = _reemit_at(done, rec, lead, plan)
        if at is not None:
            candidates.append(opening(plan.steps[done].channel, at, policy))
    index = _next_index(lead, plan)
    if index is not None:
        if lead.channel_off(plan.steps[index].channel):
            candidates.append(lead.created_at)  # to be marked missed at once
        elif upcoming is not None and upcoming[0] == index:
            candidates.append(upcoming[1])
        else:
            candidates.append(step_due(lead, plan, index, policy))
    return min(candidates, default=None)


# campaigns ---------------------------------------------------------------------------------
def _runs(lead: Lead, campaigns: CampaignPlans, campaign_at: CampaignAt | None) -> list[Run]:
    if lead.paused or lead.facts is None:
        return []
    return active_runs(
        lead.facts,
        campaigns,
        no_channel=bool(lead.email_off and lead.sms_off),
        plan_at=campaign_at,
    )


def _channel(lead: Lead, step: CampaignStep) -> Channel:
    if step.channel is not None:
        return step.channel
    c = lead.customer
    return preferred_channel(c.preferred, c.email, c.phone)


def _campaign_reemit_at(run: Run, step: CampaignStep, rec: StepRecord) -> datetime | None:
    if rec.status is not StepStatus.DEFERRED or rec.until is None or rec.emits >= MAX_EMITS:
        return None
    if rec.due is not None and rec.until <= rec.due:
        return None  # already re-emitted for this deferral
    if _after_start(run, rec.until):
        return None  # a reminder after the appointment began is no reminder
    if rec.until > run.anchor + step.after + _CAMPAIGN_DEFER_LIMIT:
        return None
    return rec.until


#: A deferred campaign step (a window, the frequency cap) is re-emitted at most this long
#: after it fell due.
_CAMPAIGN_DEFER_LIMIT = timedelta(days=7)


def _step_due(run: Run, step: CampaignStep, channel: Channel, policy: SendWindowPolicy) -> datetime:
    return opening(channel, run.anchor + step.after, policy)


def _evaluate_campaigns(
    lead: Lead,
    campaigns: CampaignPlans,
    policy: SendWindowPolicy,
    now: datetime,
    campaign_at: CampaignAt | None,
) -> tuple[Lead, list[DueCommand]]:
    out = lead
    commands: list[DueCommand] = []
    for run in _runs(lead, campaigns, campaign_at):
        steps = lead.runs.get(run.run_id, {})
        for index, step in enumerate(run.plan.steps):
            channel = _channel(lead, step)
            rec = steps.get(index)
            if rec is not None:
                at = _campaign_reemit_at(run, step, rec)
                if at is None or lead.channel_off(channel):
                    continue
                due = opening(channel, at, policy)
                if due > now:
                    continue
                if _after_start(run, max(due, now)):
                    continue
                out = _with_step(
                    out,
                    lead,
                    run.run_id,
                    index,
                    dataclasses.replace(rec, due=due, emits=rec.emits + 1),
                )
                commands.append(
                    DueCommand(
                        index,
                        channel,
                        step.template,
                        due,
                        reemit=True,
                        campaign=run.run_id,
                        context=run.context,
                    )
                )
                continue
            off = lead.channel_off(channel)
            if off:
                new = StepRecord(StepStatus.MISSED, reason=f"channel_off:{off}")
                out = _with_step(out, lead, run.run_id, index, new)
                continue
            due = _step_due(run, step, channel, policy)
            if due > now:
                break  # the steps of a run go out in order
            late = now - due > run.plan.max_late
            if _after_start(run, max(due, now)):
                new = StepRecord(StepStatus.MISSED, reason="after_start")
            elif late:
                new = StepRecord(StepStatus.MISSED, reason="too_late")
            else:
                new = StepRecord(StepStatus.EMITTED, due=due, emitted_at=now, emits=1)
                commands.append(
                    DueCommand(
                        index, channel, step.template, due, campaign=run.run_id, context=run.context
                    )
                )
            out = _with_step(out, lead, run.run_id, index, new)
    return out, commands


def _after_start(run: Run, at: datetime) -> bool:
    """A reminder at `at` would come once its appointment began: it is no reminder."""
    return run.plan.campaign is Campaign.APPOINTMENT and at >= run.anchor


def _with_step(out: Lead, lead: Lead, run_id: str, index: int, rec: StepRecord) -> Lead:
    """`out` (`lead` itself until the first change, then its own clone) with `rec` set."""
    if out is lead:
        out = clone(lead)
    out.runs.setdefault(run_id, {})[index] = rec
    return out


def _next_campaign_due(
    lead: Lead,
    campaigns: CampaignPlans,
    policy: SendWindowPolicy,
    campaign_at: CampaignAt | None,
) -> datetime | None:
    candidates: list[datetime] = []
    for run in _runs(lead, campaigns, campaign_at):
        steps = lead.runs.get(run.run_id, {})
        for index, step in enumerate(run.plan.steps):
            channel = _channel(lead, step)
            rec = steps.get(index)
            if rec is not None:
                at = _campaign_reemit_at(run, step, rec)
                if at is not None and not lead.channel_off(channel):
                    candidates.append(opening(channel, at, policy))
                continue
            if lead.channel_off(channel):
                candidates.append(run.anchor)  # to be marked missed at once
            else:
                candidates.append(_step_due(run, step, channel, policy))
            break
    return min(candidates, default=None)
