"""Mask customer contacts for logs: `jane.doe@gmail.com` → `j***@gmail.com`; and in free
texts of providers (an error message quoting the number it refused) before they are stored,
published or logged."""

from __future__ import annotations

import re

_EMAIL = re.compile(r"[\w.+'%-]+@[\w-]+(?:\.[\w-]+)+")
#: 7+ digits, optionally after a "+", separated by at most one space, dot, dash or bracket.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[ ().-]{0,2}\d){6,}")


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


def mask_contacts(text: str) -> str:
    """`text` with every email address and phone number in it masked (`mask_email`,
    `mask_phone`): provider texts quote the recipient they refused."""
    masked = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), masked)
