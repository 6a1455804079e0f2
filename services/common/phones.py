"""Phone numbers parsed and validated with `phonenumbers` (Google's libphonenumber): what every
service stores, matches and sends to is the E.164 form of a VALID number, or nothing.

A number written without a country code is read as a US/Canada (NANP) number. Texts longer
than `MAX_PHONE_INPUT` characters are no phone number (libphonenumber's own limit is 250).
Parsing costs ~35 µs, so results are remembered per input text (bounded LRU): a location's
customers come back with every change of their orders. The usual form, a US or Canadian number
already in E.164 (`+1` and ten digits), skips the parser and the search over the 25 regions
that share +1 (a third of the cost; tested equal to the general path).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumber, PhoneNumberFormat

DEFAULT_REGION = "US"
MAX_PHONE_INPUT = 64
#: Longest E.164 number: "+" and 15 digits.
E164_MAX = 16


class Phone(NamedTuple):
    """A valid number: its E.164 form and its region (ISO 3166 alpha-2, e.g. "US", "CA")."""

    e164: str
    region: str | None


@functools.lru_cache(maxsize=16384)
def parse_phone(value: str | None) -> Phone | None:
    """The valid number `value` writes, or None (empty, too long, unparsable, not valid)."""
    if not value or len(value) > MAX_PHONE_INPUT:
        return None
    # An area code never starts with 0 or 1; with one, the ten digits as an integer lose their
    # leading zeros and read as a shorter number another region may accept: the parser decides.
    if (
        len(value) == 12
        and value.startswith("+1")
        and value.isascii()
        and value[1:].isdigit()
        and value[2] not in "01"
    ):
        number = PhoneNumber(country_code=1, national_number=int(value[2:]))
        for region in _NANP_USUAL:
            if phonenumbers.is_valid_number_for_region(number, region):
                return Phone(value, region)
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return Phone(e164, phonenumbers.region_code_for_number(number))


#: The +1 regions nearly every number of ours is in, tried first.
_NANP_USUAL = ("US", "CA")


def normalize_phone(value: str | None) -> str | None:
    """E.164 (`+12025550123`) of a valid number; None for anything else."""
    phone = parse_phone(value)
    return None if phone is None else phone.e164


def parse_phone_list(raw: str | None) -> frozenset[str]:
    """`"+12025550123, +1 (416) 555-0199"` → their E.164 forms. Raises ValueError naming the
    first entry that is not a valid number written with its country code (`+…`): a list of
    exact numbers must not depend on a default country."""
    if not raw:
        return frozenset()
    out = set()
    for part in raw.strip().strip("\"'`").replace(";", ",").split(","):
        entry = part.strip().strip("\"'`").strip()
        if not entry:
            continue
        phone = parse_phone(entry) if entry.startswith("+") else None
        if phone is None:
            raise ValueError(f"{entry!r} is not a valid E.164 number (+ and country code)")
        out.add(phone.e164)
    return frozenset(out)


def parse_regions(raw: str | None) -> frozenset[str]:
    """`"US, ca"` → {"US", "CA"}; raises ValueError naming an unknown region code."""
    out = set()
    for part in (raw or "").replace(";", ",").split(","):
        code = part.strip().upper()
        if not code:
            continue
        if code not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"{code!r} is not a region code (ISO 3166 alpha-2, e.g. US, CA)")
        out.add(code)
    return frozenset(out)
