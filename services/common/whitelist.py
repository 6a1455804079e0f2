"""Whitelist parsing and contact normalisation, shared by the outbound gate and DEMO_MODE."""

from __future__ import annotations

import re

_QUOTES = "\"'`"


def normalize_email(value: str | None) -> str | None:
    """Trim, strip surrounding quotes and lower-case; None for empty input."""
    if value is None:
        return None
    cleaned = value.strip().strip(_QUOTES).strip().lower()
    return cleaned or None


def parse_whitelist(raw: str | None) -> frozenset[str]:
    """`"sam@example.com, Test@test.com"` → {"sam@example.com", "test@test.com"}.

    The whole value may itself be quoted (as in the seed's `.env` example). Empty or unset →
    the empty set, which means nothing is ever sent.
    """
    if not raw:
        return frozenset()
    body = raw.strip().strip(_QUOTES)
    entries = (normalize_email(part) for part in re.split(r"[,;\s]+", body))
    return frozenset(e for e in entries if e)


def is_whitelisted(email: str | None, whitelist: frozenset[str]) -> bool:
    normalized = normalize_email(email)
    return normalized is not None and normalized in whitelist


_NON_DIGITS = re.compile(r"\D")


def _digits(text: str) -> str:
    """The decimal digits of `text` (`\\d`, any script), in order. A text of digits only is
    its own answer (`isdecimal` is exactly `\\d`'s class): most stored numbers are."""
    return text if text.isdecimal() else _NON_DIGITS.sub("", text)


def normalize_phone(value: str | None, default_country: str = "1") -> str | None:
    """Best-effort E.164 (`+15551234567`); None when there are not enough digits."""
    if not value:
        return None
    stripped = value.strip()
    if stripped.startswith("+"):
        digits = _digits(stripped[1:])
        return f"+{digits}" if len(digits) >= 8 else None
    digits = _digits(stripped)
    if len(digits) == 10:
        return f"+{default_country}{digits}"
    if len(digits) == 11 and digits.startswith(default_country):
        return f"+{digits}"
    return f"+{digits}" if len(digits) >= 8 else None
