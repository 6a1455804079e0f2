"""DEMO_MODE (DESIGN §6): inbound customers whose email is not whitelisted are dropped at the
door, so a demo environment stores no real customer. It never loosens the outbound gate."""

from __future__ import annotations

from services.common.whitelist import is_whitelisted

DROP_REASON = "demo_mode: customer email not whitelisted"


def admits_email(email: str | None, *, demo_mode: bool, whitelist: frozenset[str]) -> bool:
    """Outside DEMO_MODE everything is admitted; inside it only whitelisted emails (a customer
    with no email is not whitelisted)."""
    return not demo_mode or is_whitelisted(email, whitelist)
