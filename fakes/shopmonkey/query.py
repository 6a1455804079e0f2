"""The v3 list-query grammar as live probes found it (reference/shopmonkey.md §2.3):
Prisma `where` (scalar = equals, `equals`, `not`, `in`, `notIn`, `gt`, `gte`, `lt`, `lte`,
`contains`, `startsWith`, `endsWith`, `mode`, `AND`, `OR`, `NOT`); `$gte`-style and other
unknown operators and unknown fields are silently ignored; `orderby` is a JSON object of
field → "asc"|"desc" (nulls last ascending, first descending, as PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

OPERATORS = frozenset(
    {"equals", "not", "in", "notIn", "gt", "gte", "lt", "lte", "contains", "startsWith",
     "endsWith", "mode"}
)  # fmt: skip


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 10 and value[4:5] == "-":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _compare(op: str, value: Any, arg: Any, insensitive: bool) -> bool:
    if op == "mode":
        return True
    if op in ("in", "notIn"):
        members = arg if isinstance(arg, list) else [arg]
        inside = value in members
        return inside if op == "in" else not inside
    if op in ("equals", "not"):
        same = _field_matches(value, arg) if isinstance(arg, dict) else value == arg
        return same if op == "equals" else not same
    if value is None or arg is None:
        return False
    if op in ("contains", "startsWith", "endsWith"):
        text, probe = str(value), str(arg)
        if insensitive:
            text, probe = text.lower(), probe.lower()
        if op == "contains":
            return probe in text
        return text.startswith(probe) if op == "startsWith" else text.endswith(probe)
    left, right = _comparable(value), _comparable(arg)
    try:
        if op == "gt":
            return bool(left > right)
        if op == "gte":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        return False


def _field_matches(value: Any, condition: Any) -> bool:
    if not isinstance(condition, dict):
        return bool(value == condition)
    insensitive = condition.get("mode") == "insensitive"
    return all(
        _compare(op, value, arg, insensitive)
        for op, arg in condition.items()
        if op in OPERATORS  # `$gte`, `eq`, `ne`, `like` … are silently ignored
    )


def matches(record: dict[str, Any], where: dict[str, Any], fields: frozenset[str]) -> bool:
    for key, condition in where.items():
        parts = condition if isinstance(condition, list) else [condition]
        if key == "AND":
            ok = all(matches(record, w, fields) for w in parts if isinstance(w, dict))
        elif key == "OR":
            ok = any(matches(record, w, fields) for w in parts if isinstance(w, dict))
        elif key == "NOT":
            ok = not any(matches(record, w, fields) for w in parts if isinstance(w, dict))
        elif key not in fields:
            ok = True  # unknown field: silently ignored
        else:
            ok = _field_matches(record.get(key), condition)
        if not ok:
            return False
    return True


def order_records(records: list[dict[str, Any]], orderby: Any) -> list[dict[str, Any]]:
    """Stable sort by the orderby object (or a list of them); unknown shapes change nothing."""
    specs = orderby if isinstance(orderby, list) else [orderby]
    keys = [
        (name, str(direction).lower())
        for spec in specs
        if isinstance(spec, dict)
        for name, direction in spec.items()
        if str(direction).lower() in ("asc", "desc")
    ]
    result = list(records)
    for name, direction in reversed(keys):
        present = [r for r in result if r.get(name) is not None]
        missing = [r for r in result if r.get(name) is None]
        present.sort(key=lambda r: _comparable(r[name]), reverse=direction == "desc")
        result = present + missing if direction == "asc" else missing + present
    return result
