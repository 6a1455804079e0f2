"""Phone numbers for tests: valid to libphonenumber (the services drop anything else), in the
NANP's 555 exchange, random enough that tests sharing one database never share a number."""

from __future__ import annotations

import random

AREA_CODES = (202, 206, 212, 303, 305, 312, 404, 415, 512, 617, 702, 713, 718, 808, 917)


def random_phone() -> str:
    """`+1 NPA 555 XXXX`, E.164."""
    return f"+1{random.choice(AREA_CODES)}555{random.randrange(10**4):04d}"
