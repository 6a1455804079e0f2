"""Email whitelist parsing and email normalisation, shared by the outbound gate and DEMO_MODE
(phone numbers: `services.common.phones`)."""

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
