"""Mask customer contacts for logs: `jane.doe@gmail.com` → `j***@gmail.com`."""

from __future__ import annotations


def mask_email(email: str | None) -> str:
    if not email:
        return "<none>"
    local, sep, domain = email.strip().partition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str | None) -> str:
    if not phone:
        return "<none>"
    digits = [c for c in phone if c.isdigit()]
    return f"***{''.join(digits[-2:])}" if len(digits) >= 4 else "***"


def show_email(email: str | None, whitelist: frozenset[str]) -> str:
    """Whitelisted (test) addresses are shown in full; customers' are masked."""
    from services.common.whitelist import is_whitelisted

    return (email or "<none>") if is_whitelisted(email, whitelist) else mask_email(email)
