"""The time arguments of every command (`--since`, `--until`): one parser."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

#: What `beginning` means: before any record.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(value: str, *, now: datetime | None = None) -> datetime:
    """ISO-8601 (naive = UTC), `beginning`, `now`, or a duration ago (`90m`, `2h`, `7d`)."""
    text = value.strip()
    now = now or datetime.now(UTC)
    if text.lower() in ("beginning", "earliest", "0"):
        return EPOCH
    if text.lower() == "now":
        return now
    match = _DURATION.match(text.lower())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: expected ISO-8601 time, 'beginning', or a duration like 2h / 7d"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
