"""Terminal output the commands share: aligned tables, section titles, short timestamps."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import click


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  "
) -> str:
    """Left-aligned columns; numbers right-aligned."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | float) for r in rows) for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return (indent + "  ".join(parts)).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in cells)])


def section(title: str) -> None:
    click.echo()
    click.echo(click.style(title, bold=True))


def short_time(value: object) -> str:
    """`2026-05-01 12:00:00` (UTC) from a datetime or an ISO string; `-` for nothing."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return "-" if value is None else str(value)[:19].replace("T", " ")


def error_line(exc: BaseException) -> str:
    """An error as one short line, for a section whose source did not answer."""
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0][:300]
