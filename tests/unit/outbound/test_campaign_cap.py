"""The frequency cap across campaigns (DESIGN §12): one customer never gets two campaigns'
messages on one day (the location's day), the estimate nurture plan being one of them; the
later campaign waits for tomorrow (deferred, re-emitted by the sequencer), it is not dropped.
And a review request goes to a customer at most once in 90 days."""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import Channel
from schemas.events import OutcomeStatus
from services.outbound.domain.safety_gate import Verdict, decide, next_local_day
from tests.unit.outbound.support import OPEN_NOW, command, gate_input, harness

NY = ZoneInfo("America/New_York")
MONDAY_9AM = datetime(2026, 3, 9, 9, 0, tzinfo=NY)
KINDS = [None, "review", "declined", "appointment:ap-1@1773000000"]


def test_another_campaign_today_defers_to_the_start_of_tomorrow() -> None:
    decision = decide(gate_input(now=OPEN_NOW, other_campaign_today=True))
    assert decision.verdict is Verdict.DEFER and decision.reason == "campaign_cap"
    local = OPEN_NOW.astimezone(NY)
    assert decision.deferred_until == datetime(
        local.year, local.month, local.day, tzinfo=NY
    ) + timedelta(days=1)


def test_the_cap_comes_after_every_refusal() -> None:
    """A command the gate refuses anyway is skipped for that reason, never deferred."""
    refused = decide(gate_input(other_campaign_today=True, whitelist=frozenset()))
    assert (refused.verdict, refused.reason) == (Verdict.SKIP, "whitelist_empty")


def test_a_recent_review_request_skips_the_next_one() -> None:
    decision = decide(gate_input(review_recent=True, other_campaign_today=True))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "review_recent")


def test_tomorrow_is_the_locations_tomorrow_across_a_dst_change() -> None:
    before_spring_forward = datetime(2026, 3, 8, 4, 30, tzinfo=UTC)  # Mar 7, 23:30 in NY
    assert next_local_day(before_spring_forward, "America/New_York") == datetime(
        2026, 3, 8, tzinfo=NY
    )
    assert next_local_day(datetime(2026, 3, 8, 12, tzinfo=NY), "America/New_York") == (
        datetime(2026, 3, 9, tzinfo=NY)
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(KINDS),
            st.sampled_from([Channel.EMAIL, Channel.SMS]),
            st.integers(min_value=0, max_value=3),  # weekday from Monday
            st.integers(min_value=0, max_value=8 * 60),  # minutes after 9:00
        ),
        min_size=1,
        max_size=12,
    )
)
async def test_a_customer_never_gets_two_campaigns_messages_in_one_day(
    commands: list[tuple[str | None, Channel, int, int]],
) -> None:
    """Commands of any campaigns for one customer at any times over a week, each deferred one
    re-emitted at its time (as the sequencer does): on no local day do messages of two
    campaigns go out, and every command is sent or still waiting, none dropped by the cap."""
    h = harness(caps={Channel.EMAIL: 0, Channel.SMS: 0})  # only the campaign cap
    lead = uuid.uuid4()
    queue: list[tuple[datetime, int, object]] = []
    for n, (kind, channel, day, minutes) in enumerate(commands):
        at = (MONDAY_9AM + timedelta(days=day, minutes=minutes)).astimezone(UTC)
        cmd = command(channel=channel, lead_id=lead, step=n, campaign=kind, at=at)
        heapq.heappush(queue, (at, n, cmd))
    sent_on: dict[object, set[str]] = defaultdict(set)
    final: dict[int, OutcomeStatus] = {}
    end = MONDAY_9AM + timedelta(days=30)
    while queue:
        at, n, cmd = heapq.heappop(queue)
        if at > end:
            break
        h.clock.now = at
        outcome = await h.handle(cmd)  # type: ignore[arg-type]
        final[n] = outcome.status
        if outcome.status is OutcomeStatus.SENT:
            kind = (cmd.campaign or "nurture").split(":")[0]  # type: ignore[attr-defined]
            sent_on[at.astimezone(NY).date()].add(kind)
        elif outcome.status is OutcomeStatus.DEFERRED:
            assert outcome.deferred_until is not None
            assert outcome.reason in ("campaign_cap", "outside_send_window")
            again = cmd.model_copy(update={"due_at": outcome.deferred_until})  # type: ignore[attr-defined]
            heapq.heappush(queue, (outcome.deferred_until, n, again))
    for day, kinds in sent_on.items():
        assert len(kinds) == 1, (day, kinds)
    assert all(status is OutcomeStatus.SENT for status in final.values()), final
