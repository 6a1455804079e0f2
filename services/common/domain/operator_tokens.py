"""Operators' API tokens (pure): `lop_<operator id, 32 hex>_<secret>`.

The id lets the one account's argon2 hash be checked (no scan over every operator); only the
hash of the whole token is stored, so the id alone grants nothing.
"""

from __future__ import annotations

import re
import secrets
import uuid

PREFIX = "lop_"
_TOKEN = re.compile(r"^lop_([0-9a-f]{32})_([A-Za-z0-9_-]{32,64})$")


def new_api_token(operator_id: uuid.UUID) -> str:
    return f"{PREFIX}{operator_id.hex}_{secrets.token_urlsafe(32)}"


def token_operator(token: str) -> uuid.UUID | None:
    """The operator a well-formed token names (None: not a token of ours)."""
    found = _TOKEN.match(token) if len(token) <= 120 else None
    return uuid.UUID(hex=found.group(1)) if found else None
