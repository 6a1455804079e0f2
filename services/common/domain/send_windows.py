"""Send windows (DESIGN §5, §6): when a channel may reach a lead, in the location's local time.

SMS: TCPA quiet hours 8:00–21:00 in the recipient's local time (the location's timezone as a
proxy), narrowed by stricter state rules. Email: the location's opening hours, or 8:00–20:00
daily when none are configured. A moment outside the window maps to the next opening, computed
on local wall-clock time, so DST changes move the UTC instant, never the local hour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from schemas.base import Channel

# weekday → (start, end) local; a missing weekday means no sending that day.
WeeklyHours = dict[int, tuple[time, time]]

ALL_WEEK = range(7)
TCPA_START, TCPA_END = time(8), time(21)
DEFAULT_EMAIL_START, DEFAULT_EMAIL_END = time(8), time(20)


def _week(start: time, end: time, days: range | tuple[int, ...] = ALL_WEEK) -> WeeklyHours:
    return {d: (start, end) for d in days}


# Stricter state rules (reference/messaging.md §4.1; not legal advice, unconfirmed against the
# statutes): weekdays 0 = Monday … 6 = Sunday.
STATE_SMS_HOURS: dict[str, WeeklyHours] = {
    "FL": _week(time(8), time(20)),
    "OK": _week(time(8), time(20)),
    "MD": _week(time(8), time(20)),
    "MS": _week(time(8), time(20), (0, 1, 2, 3, 4, 5)),
    "CT": _week(time(9), time(20)),
    "TX": _week(time(9), time(21), (0, 1, 2, 3, 4, 5)) | {6: (time(12), time(21))},
    "RI": _week(time(9), time(18), (0, 1, 2, 3, 4)) | _week(time(10), time(17), (5, 6)),
    "AL": _week(TCPA_START, TCPA_END, (0, 1, 2, 3, 4, 5)),
    "LA": _week(TCPA_START, TCPA_END, (0, 1, 2, 3, 4, 5)),
}


def _intersect(a: WeeklyHours, b: WeeklyHours) -> WeeklyHours:
    out: WeeklyHours = {}
    for day in set(a) & set(b):
        start, end = max(a[day][0], b[day][0]), min(a[day][1], b[day][1])
        if start < end:
            out[day] = (start, end)
    return out


@dataclass(frozen=True, slots=True)
class SendWindowPolicy:
    """A location's windows. Build with `SendWindowPolicy.for_location(...)`."""

    timezone: str
    sms_hours: WeeklyHours = field(default_factory=lambda: _week(TCPA_START, TCPA_END))
    email_hours: WeeklyHours = field(
        default_factory=lambda: _week(DEFAULT_EMAIL_START, DEFAULT_EMAIL_END)
    )
    #: Days the location marked closed (holidays, local dates): no window opens on them, so a
    #: message due then waits for the next open day.
    closed: frozenset[date] = frozenset()

    @classmethod
    def for_location(
        cls,
        *,
        timezone: str,
        us_state: str | None = None,
        location_hours: WeeklyHours | None = None,
        closed_days: Iterable[date] = (),
    ) -> SendWindowPolicy:
        sms = _week(TCPA_START, TCPA_END)
        if us_state and us_state.upper() in STATE_SMS_HOURS:
            sms = _intersect(sms, STATE_SMS_HOURS[us_state.upper()])
        email = (
            dict(location_hours)
            if location_hours
            else _week(DEFAULT_EMAIL_START, DEFAULT_EMAIL_END)
        )
        return cls(
            timezone=timezone, sms_hours=sms, email_hours=email, closed=frozenset(closed_days)
        )

    def hours(self, channel: Channel) -> WeeklyHours:
        return self.sms_hours if channel is Channel.SMS else self.email_hours


def _local(day: date, at: time, tz: ZoneInfo) -> datetime:
    """A local wall-clock moment; in a DST gap it resolves to the instant after the gap."""
    naive = datetime.combine(day, at)
    aware = naive.replace(tzinfo=tz, fold=0)
    # Round-trip detects a non-existent local time (spring forward): move to fold=1's instant.
    if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        aware = naive.replace(tzinfo=tz, fold=1)
    return aware


def next_opening(channel: Channel, at: datetime, policy: SendWindowPolicy) -> datetime:
    """`at` itself (in UTC) when the window is open then, else the next opening instant.

    Raises ValueError when the channel has no window on any day of the week.
    """
    if at.tzinfo is None:
        raise ValueError("`at` must be timezone-aware")
    hours = policy.hours(channel)
    if not hours:
        raise ValueError(f"{channel.value} has no send window at all")
    tz = ZoneInfo(policy.timezone)
    at_utc = at.astimezone(UTC)
    local_day = at_utc.astimezone(tz).date()
    for offset in range(-1, 9 + len(policy.closed)):
        day = local_day + timedelta(days=offset)
        window = hours.get(day.weekday())
        if window is None or day in policy.closed:
            continue
        start = _local(day, window[0], tz).astimezone(UTC)
        end = _local(day, window[1], tz).astimezone(UTC)
        if at_utc < start:
            return start
        if at_utc < end:
            return at_utc
    raise AssertionError("unreachable: some weekday has a window")  # pragma: no cover


def window_end(channel: Channel, at: datetime, policy: SendWindowPolicy) -> datetime | None:
    """When the window open at `at` closes (None if closed at `at`); for SMS ValidityPeriod."""
    tz = ZoneInfo(policy.timezone)
    at_utc = at.astimezone(UTC)
    day = at_utc.astimezone(tz).date()
    window = policy.hours(channel).get(day.weekday())
    if window is None or day in policy.closed:
        return None
    start, end = (_local(day, w, tz).astimezone(UTC) for w in window)
    return end if start <= at_utc < end else None
