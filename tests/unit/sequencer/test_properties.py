"""Property tests (hypothesis) on the pure domain: order-insensitive lifecycle, no step planned
twice over any sequence of ticks, no SMS due outside 8:00–21:00 local (DST weeks included)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.base import Channel
from schemas.events import OutcomeStatus, SignalKind
from services.common.domain.send_windows import SendWindowPolicy, next_opening
from services.sequencer.domain.effects import visible
from services.sequencer.domain.lead import Lead, StepStatus
from services.sequencer.domain.lifecycle import apply_contact, apply_order, apply_outcome
from services.sequencer.domain.plan import DEFAULT_PLAN, NurturePlan, PlanStep
from services.sequencer.domain.planner import evaluate, next_due
from tests.unit.sequencer.support import T0, order, outcome, signal

ZONES = ["America/New_York", "America/Los_Angeles", "America/Chicago", "Europe/London"]
# DST weeks of 2026: US spring forward Mar 8, fall back Nov 1; UK Mar 29 / Oct 25.
DST_DAYS = [
    datetime(2026, 3, 8, tzinfo=UTC),
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 3, 29, tzinfo=UTC),
    datetime(2026, 10, 25, tzinfo=UTC),
]
STATES = [None, "TX", "FL", "RI", "CT", "CA"]
LEAD_ID = order().lead_id
assert LEAD_ID is not None

# ---------------------------------------------------------------- lifecycle: order-insensitive

_orders = st.builds(
    lambda v, status, flags, minutes: order(
        version=v,
        status=status,
        at=T0 + timedelta(minutes=minutes),
        # a stable event id names one change: different content, different id
        event_id=f"order:o-1:{v}:{status}:{sorted(flags.items())}:{minutes}",
        **flags,
    ),
    st.integers(2, 6),
    st.sampled_from(["Estimate", "RepairOrder", "Invoice"]),
    st.fixed_dictionaries(
        {},
        optional={
            "authorized": st.booleans(),
            "paid": st.booleans(),
            "archived": st.booleans(),
            "deleted": st.booleans(),
        },
    ),
    st.integers(0, 5000),
)
_outcomes = st.builds(
    lambda step, ch, status, reason, minutes: outcome(
        LEAD_ID,
        step,
        ch,
        status,
        reason=reason,
        at=T0 + timedelta(minutes=minutes),
        until=T0 + timedelta(minutes=minutes + 60) if status is OutcomeStatus.DEFERRED else None,
    ),
    st.integers(0, 4),
    st.sampled_from(list(Channel)),
    st.sampled_from(list(OutcomeStatus)),
    st.sampled_from(["", "suppressed", "frequency_cap", "lead_opted_out", "invalid_number"]),
    st.integers(0, 5000),
)
_signals = st.builds(
    lambda kind, ch, minutes: signal(LEAD_ID, kind, channel=ch, at=T0 + timedelta(minutes=minutes)),
    st.sampled_from(list(SignalKind)),
    st.sampled_from([None, Channel.EMAIL, Channel.SMS]),
    st.integers(0, 5000),
)
_any_signal = st.one_of(_orders, _outcomes, _signals)


def apply(lead: Lead, item: Any) -> Lead:
    kind = type(item).__name__
    if kind == "OrderEvent":
        return apply_order(lead, item)
    if kind == "TouchPointOutcome":
        return apply_outcome(lead, item)
    return apply_contact(lead, item)


def final(lead: Lead) -> tuple[Any, ...]:
    """Everything but the bounded dedupe memory (whose order is arrival order)."""
    return (visible(lead), dataclasses.replace(lead, seen=[]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    signals=st.lists(_any_signal, min_size=1, max_size=12),
    data=st.data(),
)
def test_any_permutation_or_duplication_ends_in_the_same_state(
    signals: list[Any], data: st.DataObject
) -> None:
    created = apply_order(None, order())
    reference = created
    for item in signals:
        reference = apply(reference, item)
    # a shuffled sequence with duplicates of any records, anywhere
    dupes = data.draw(st.lists(st.sampled_from(signals), max_size=len(signals)))
    shuffled = data.draw(st.permutations(signals + dupes))
    other = created
    for item in shuffled:
        other = apply(other, item)
    assert final(other) == final(reference)


# ---------------------------------------------------------------- planner: no step twice


@settings(max_examples=200, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 36 * 3600), min_size=1, max_size=40),
    defer_at=st.sets(st.integers(0, 39), max_size=8),
    zone=st.sampled_from(ZONES),
    state=st.sampled_from(STATES),
)
def test_no_step_is_planned_twice_over_any_sequence_of_ticks(
    gaps: list[int], defer_at: set[int], zone: str, state: str | None
) -> None:
    policy = SendWindowPolicy.for_location(timezone=zone, us_state=state)
    lead = apply_order(None, order())
    now = T0
    first_emissions: list[int] = []
    deferrals: dict[int, int] = {}
    reemits: dict[int, int] = {}
    for i, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        ev = evaluate(lead, DEFAULT_PLAN, policy, now)
        lead = ev.lead
        # the step evaluate found not yet due is what next_due would compute again
        assert next_due(lead, DEFAULT_PLAN, policy, ev.upcoming) == next_due(
            lead, DEFAULT_PLAN, policy
        )
        for cmd in ev.commands:
            assert cmd.due_at <= now
            if cmd.reemit:
                reemits[cmd.step_index] = reemits.get(cmd.step_index, 0) + 1
            else:
                first_emissions.append(cmd.step_index)
        # the same instant again changes nothing and emits nothing
        assert evaluate(lead, DEFAULT_PLAN, policy, now).commands == ()
        if i in defer_at and ev.commands:  # outbound defers the last command it got
            cmd = ev.commands[-1]
            until = now + timedelta(hours=3)
            lead = apply_outcome(
                lead,
                outcome(LEAD_ID, cmd.step_index, cmd.channel, OutcomeStatus.DEFERRED,
                        at=now, until=until),
            )  # fmt: skip
            deferrals[cmd.step_index] = deferrals.get(cmd.step_index, 0) + 1
        due = next_due(lead, DEFAULT_PLAN, policy)
        assert due is None or due > now  # what is due by now was just emitted
    assert len(first_emissions) == len(set(first_emissions))
    assert first_emissions == sorted(first_emissions)
    for step, n in reemits.items():
        assert n <= deferrals.get(step, 0)  # a re-emission only answers a deferral


# ---------------------------------------------------------------- send windows: SMS 8–21 local

SMS_PLAN = NurturePlan(
    steps=tuple(PlanStep(timedelta(minutes=m), Channel.SMS, "s") for m in (0, 61, 500, 1300)),
    lost_after=timedelta(days=5),
    min_gap=timedelta(minutes=30),
    max_late=timedelta(days=3),
)


def _local_ok(at: datetime, zone: str) -> bool:
    local = at.astimezone(ZoneInfo(zone)).time()
    return time(8) <= local < time(21)


@settings(max_examples=400, deadline=None)
@given(
    day=st.sampled_from(DST_DAYS),
    offset=st.integers(-4 * 86400, 4 * 86400),
    zone=st.sampled_from(ZONES),
    state=st.sampled_from(STATES),
)
def test_sms_next_opening_is_always_inside_8_to_21_local(
    day: datetime, offset: int, zone: str, state: str | None
) -> None:
    policy = SendWindowPolicy.for_location(timezone=zone, us_state=state)
    at = day + timedelta(seconds=offset)
    opening = next_opening(Channel.SMS, at, policy)
    assert opening >= at
    assert _local_ok(opening, zone)
    if _local_ok(at, zone) and opening != at:
        # open per TCPA but closed by a stricter state rule; still never a late-night SMS
        assert state is not None


@settings(max_examples=150, deadline=None)
@given(
    day=st.sampled_from(DST_DAYS),
    created=st.integers(-3 * 86400, 3 * 86400),
    ticks=st.lists(st.integers(60, 6 * 3600), min_size=5, max_size=40),
    zone=st.sampled_from(ZONES),
    state=st.sampled_from(STATES),
)
def test_no_sms_command_is_ever_due_outside_8_to_21_local(
    day: datetime, created: int, ticks: list[int], zone: str, state: str | None
) -> None:
    policy = SendWindowPolicy.for_location(timezone=zone, us_state=state)
    start = day + timedelta(seconds=created)
    lead = dataclasses.replace(apply_order(None, order(at=start)), created_at=start)
    now = start
    for gap in ticks:
        now += timedelta(seconds=gap)
        ev = evaluate(lead, SMS_PLAN, policy, now)
        lead = ev.lead
        for cmd in ev.commands:
            assert cmd.channel is Channel.SMS
            assert _local_ok(cmd.due_at, zone), (cmd.due_at, zone)
    for step in lead.steps.values():
        if step.status is StepStatus.EMITTED:
            assert step.due is not None and _local_ok(step.due, zone)


@settings(max_examples=500, deadline=None)
@given(
    day=st.sampled_from(DST_DAYS),
    offset=st.integers(-4 * 86400, 4 * 86400),
    zone=st.sampled_from(ZONES),
    state=st.sampled_from(STATES),
    channel=st.sampled_from(list(Channel)),
)
def test_planner_fast_opening_equals_the_full_search(
    day: datetime, offset: int, zone: str, state: str | None, channel: Channel
) -> None:
    from services.sequencer.domain.planner import opening

    policy = SendWindowPolicy.for_location(timezone=zone, us_state=state)
    at = day + timedelta(seconds=offset)
    assert opening(channel, at, policy) == next_opening(channel, at, policy)


def test_a_sent_step_reported_again_later_keeps_its_first_touch_time() -> None:
    """Outbound answers a replayed command with a duplicate outcome: the lead's last touch
    stays when the message really went out, in either arrival order."""
    first = outcome(LEAD_ID, 0, Channel.EMAIL, OutcomeStatus.SENT, at=T0)
    later = outcome(LEAD_ID, 0, Channel.EMAIL, OutcomeStatus.SENT, at=T0 + timedelta(days=2))
    for items in ((first, later), (later, first)):
        current = apply_order(None, order())
        for item in items:
            current = apply_outcome(current, item)
        assert current.last_touch_at == T0
