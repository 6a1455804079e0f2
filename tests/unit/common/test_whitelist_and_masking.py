"""Whitelist normalisation (DESIGN §6.3) and log masking of customer contacts."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.common.masking import mask_email, mask_phone, show_email
from services.common.whitelist import (
    is_whitelisted,
    normalize_email,
    normalize_phone,
    parse_whitelist,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"sam@example.com, Test@test.com"', {"sam@example.com", "test@test.com"}),
        ("sam@example.com,test@test.com", {"sam@example.com", "test@test.com"}),
        ("  'SAM@Example.com'  ;  ", {"sam@example.com"}),
        ('"a@x.io" , "b@y.io"', {"a@x.io", "b@y.io"}),
        ("", set()),
        (None, set()),
        ('""', set()),
        (" , ,", set()),
    ],
)
def test_parse_whitelist(raw: str | None, expected: set[str]) -> None:
    assert parse_whitelist(raw) == frozenset(expected)


def test_matching_is_exact_after_normalisation() -> None:
    wl = parse_whitelist('"sam@example.com, Test@test.com"')
    assert is_whitelisted(" SAM@example.com ", wl)
    assert is_whitelisted('"test@TEST.com"', wl)
    assert not is_whitelisted("sam@example.co", wl)
    assert not is_whitelisted("xsam@example.com", wl)
    assert not is_whitelisted("sam@example.com.evil.io", wl)
    assert not is_whitelisted(None, wl)
    assert not is_whitelisted("", wl)
    assert not is_whitelisted("sam@example.com", frozenset())


def test_normalize_email_and_phone() -> None:
    assert normalize_email("  'Jane@Gmail.COM' ") == "jane@gmail.com"
    assert normalize_email("   ") is None
    assert normalize_phone("(555) 123-4567") == "+15551234567"
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"
    assert normalize_phone("15551234567") == "+15551234567"
    assert normalize_phone("12") is None


def _phone_by_definition(value: str | None, default_country: str = "1") -> str | None:
    """normalize_phone as first written: every non-`\\d` character dropped by the regex."""
    if not value:
        return None
    stripped = value.strip()
    digits = re.sub(r"\D", "", stripped)
    if stripped.startswith("+"):
        return f"+{digits}" if len(digits) >= 8 else None
    if len(digits) == 10:
        return f"+{default_country}{digits}"
    if len(digits) == 11 and digits.startswith(default_country):
        return f"+{digits}"
    return f"+{digits}" if len(digits) >= 8 else None


_PHONE_CHARS = st.sampled_from([*"0123456789+-() .x", "\u0663", "\uff11", "\u00b2", "\u2163"])


@given(st.one_of(st.text(_PHONE_CHARS, max_size=16), st.text(max_size=16)))
def test_normalize_phone_fast_path_keeps_the_regex_definition(value: str) -> None:
    # The digits-only shortcut (str.isdecimal) must keep exactly the `\\d` class: Arabic-Indic
    # and full-width digits count, superscripts and Roman numerals do not.
    assert normalize_phone(value) == _phone_by_definition(value)


def test_masking_hides_customer_contacts() -> None:
    assert mask_email("jane.doe@gmail.com") == "j***@gmail.com"
    assert mask_phone("+15551234567") == "***67"
    wl = parse_whitelist("sam@example.com")
    assert show_email("sam@example.com", wl) == "sam@example.com"
    assert show_email("jane.doe@gmail.com", wl) == "j***@gmail.com"
