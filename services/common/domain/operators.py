"""Operator accounts (pure): who may sign in to the dashboard and what each sees, and their API
tokens.

- `Operator`: an account; `hq` sees every location, `location` only its `tenant_ids`. Its
  credentials are argon2 hashes (`services.common.passwords`), kept out of `repr`;
  `session_epoch` grows on every reset or disable, ending every session signed before.
- API tokens: `lop_<operator id, 32 hex>_<secret>`. The id lets the one account's hash be
  checked (no scan over every operator); only the hash of the whole token is stored, so the
  id alone grants nothing.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime

ROLES = ("hq", "location")
PREFIX = "lop_"
_TOKEN = re.compile(r"^lop_([0-9a-f]{32})_([A-Za-z0-9_-]{32,64})$")


@dataclass(frozen=True, slots=True)
class Operator:
    id: uuid.UUID
    email: str
    role: str
    active: bool
    session_epoch: int
    tenant_ids: frozenset[uuid.UUID] = frozenset()
    password_hash: str | None = field(default=None, repr=False)
    token_hash: str | None = field(default=None, repr=False)
    last_sign_in_at: datetime | None = None

    @property
    def is_hq(self) -> bool:
        return self.role == "hq"

    @property
    def scope(self) -> frozenset[uuid.UUID] | None:
        """The locations this operator sees (None: every location)."""
        return None if self.is_hq else self.tenant_ids

    def sees(self, tenant_id: uuid.UUID) -> bool:
        return self.is_hq or tenant_id in self.tenant_ids


def new_api_token(operator_id: uuid.UUID) -> str:
    return f"{PREFIX}{operator_id.hex}_{secrets.token_urlsafe(32)}"


def token_operator(token: str) -> uuid.UUID | None:
    """The operator a well-formed token names (None: not a token of ours)."""
    found = _TOKEN.match(token) if len(token) <= 120 else None
    return uuid.UUID(hex=found.group(1)) if found else None
