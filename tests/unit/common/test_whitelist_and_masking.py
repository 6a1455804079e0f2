"""Whitelist normalisation (DESIGN §6.3) and log masking of customer contacts."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.common.masking import mask_contacts, mask_email, mask_phone, show_email
from services.common.phones import (
    Phone,
    normalize_phone,
    parse_phone,
    parse_phone_list,
    parse_regions,
)
from services.common.whitelist import is_whitelisted, normalize_email, parse_whitelist


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


def test_normalize_email() -> None:
    assert normalize_email("  'Jane@Gmail.COM' ") == "jane@gmail.com"
    assert normalize_email("   ") is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(202) 555-0123", "+12025550123"),
        ("+1 202 555 0123", "+12025550123"),
        ("12025550123", "+12025550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 613 555 0123", "+16135550123"),
        ("\uff08\uff12\uff10\uff12\uff09555-0123", "+12025550123"),  # full-width digits
    ],
)
def test_valid_numbers_become_e164(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "+1" + "9" * 38,  # the 39-digit number a form once let through
        "+15551234567",  # +8 digits passed the hand-written normaliser; 555 is no area code
        "(555) 123-4567",
        "+99912345678",
        "12",
        "",
        "   ",
        "+1202555012\u00b2",
        "+" + "1" * 5000,
        None,
    ],
)
def test_anything_but_a_valid_number_is_none(raw: str | None) -> None:
    assert normalize_phone(raw) is None


def test_phone_regions() -> None:
    assert parse_phone("+12025550123") == Phone("+12025550123", "US")
    assert parse_phone("+16135550123") == Phone("+16135550123", "CA")
    assert parse_phone("+442079460958") == Phone("+442079460958", "GB")


def test_phone_list_takes_exact_e164_numbers_only() -> None:
    assert parse_phone_list(' "+1 202 555 0123, +16135550123" ; ') == {
        "+12025550123",
        "+16135550123",
    }
    assert parse_phone_list("") == frozenset()
    with pytest.raises(ValueError, match="2025550123"):
        parse_phone_list("2025550123")  # no country code: not exact
    with pytest.raises(ValueError, match="5551234567"):
        parse_phone_list("+15551234567")


def test_regions_are_iso_codes() -> None:
    assert parse_regions(" us, Ca ") == {"US", "CA"}
    assert parse_regions("") == frozenset()
    with pytest.raises(ValueError, match="ZZ"):
        parse_regions("US,ZZ")


@given(st.text(max_size=40))
def test_a_normalised_phone_is_a_valid_e164_number(value: str) -> None:
    e164 = normalize_phone(value)
    if e164 is not None:
        assert e164.startswith("+") and e164[1:].isascii() and e164[1:].isdigit()
        assert len(e164) <= 16
        assert normalize_phone(e164) == e164


def test_masking_hides_customer_contacts() -> None:
    assert mask_email("jane.doe@gmail.com") == "j***@gmail.com"
    assert mask_phone("+12025550123") == "***23"
    wl = parse_whitelist("sam@example.com")
    assert show_email("sam@example.com", wl) == "sam@example.com"
    assert show_email("jane.doe@gmail.com", wl) == "j***@gmail.com"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (
            "The 'To' number +12025550123 is not a valid phone number.",
            "The 'To' number ***23 is not a valid phone number.",
        ),
        (
            "550 5.1.1 <jane.doe@gmail.com>: no such user",
            "550 5.1.1 <j***@gmail.com>: no such user",
        ),
        ("recipient (202) 555-0176 opted out", "recipient ***76 opted out"),
        ("error 21610 after 3 tries", "error 21610 after 3 tries"),  # codes are no numbers
        ("status=5.1.1; type=bounce", "status=5.1.1; type=bounce"),
    ],
)
def test_provider_texts_are_masked(text: str, masked: str) -> None:
    assert mask_contacts(text) == masked


_plausible = st.tuples(st.integers(200, 999), st.integers(200, 999), st.integers(0, 9999)).map(
    lambda t: t[0] * 10**7 + t[1] * 10**4 + t[2]
)


@settings(max_examples=500)
@given(st.integers(min_value=0, max_value=10**10 - 1) | _plausible)
@example(3_100_000)  # +1 000 310 0000: as an integer, a 7-digit number Canada's rules accept
def test_the_e164_nanp_shortcut_agrees_with_the_parser(national: int) -> None:
    """`+1` and ten digits skips libphonenumber's parser: same answer as the general path."""
    import phonenumbers

    from services.common.phones import DEFAULT_REGION

    text = f"+1{national:010d}"
    number = phonenumbers.parse(text, DEFAULT_REGION)
    expected = (
        Phone(text, phonenumbers.region_code_for_number(number))
        if phonenumbers.is_valid_number(number)
        else None
    )
    parse_phone.cache_clear()
    assert parse_phone(text) == expected
