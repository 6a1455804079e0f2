"""Days a location marks closed (holidays): no send window opens on them, so whatever falls
due then (a campaign step, a touch point, a deferred command) waits for the next open day; the
sequencer's fast path agrees with the full search."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.base import Channel
from services.common.domain.send_windows import SendWindowPolicy, next_opening, window_end
from services.sequencer.domain.planner import opening

NY = ZoneInfo("America/New_York")
CHRISTMAS = date(2026, 12, 25)  # a Friday
HOURS = {d: (time(8), time(18)) for d in range(6)}  # Mon-Sat 8-18


def policy(*closed: date) -> SendWindowPolicy:
    return SendWindowPolicy.for_location(
        timezone="America/New_York", location_hours=HOURS, closed_days=closed
    )


def test_a_closed_day_opens_no_window_and_the_next_open_day_does() -> None:
    at = datetime(2026, 12, 25, 10, 0, tzinfo=NY)
    assert next_opening(Channel.EMAIL, at, policy()) == at.astimezone(UTC)
    saturday = datetime(2026, 12, 26, 8, 0, tzinfo=NY).astimezone(UTC)
    assert next_opening(Channel.EMAIL, at, policy(CHRISTMAS)) == saturday
    assert next_opening(Channel.SMS, at, policy(CHRISTMAS)) == saturday
    assert window_end(Channel.EMAIL, at, policy(CHRISTMAS)) is None
    # closed Friday and Saturday, Sunday has no email hours: Monday
    monday = datetime(2026, 12, 28, 8, 0, tzinfo=NY).astimezone(UTC)
    closed = policy(CHRISTMAS, CHRISTMAS + timedelta(days=1))
    assert next_opening(Channel.EMAIL, at, closed) == monday


def test_many_closed_days_in_a_row_are_skipped_not_an_error() -> None:
    fortnight = [CHRISTMAS + timedelta(days=n) for n in range(14)]
    at = datetime(2026, 12, 25, 10, 0, tzinfo=NY)
    got = next_opening(Channel.EMAIL, at, policy(*fortnight))
    assert got.astimezone(NY).date() == CHRISTMAS + timedelta(days=14)


def test_the_sequencers_fast_path_sees_closed_days() -> None:
    """`planner.opening` answers at once for an instant inside the day's window: it must not
    on a closed day."""
    at = datetime(2026, 12, 25, 10, 0, tzinfo=NY)
    for p in (policy(), policy(CHRISTMAS)):
        for channel in Channel:
            assert opening(channel, at, p) == next_opening(channel, at, p)
    assert opening(Channel.EMAIL, at, policy(CHRISTMAS)).astimezone(NY).date() == date(2026, 12, 26)
