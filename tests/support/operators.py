"""Operator accounts for tests: made through the services' own functions (argon2 hashes in
the `operators` table), with a random email, the password or API token returned to the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from services.common import passwords
from services.common.db.operators import add_operator
from services.common.domain.operators import new_api_token


@dataclass(frozen=True)
class Account:
    id: uuid.UUID
    email: str
    password: str
    token: str


async def add_account(
    engine: Any, *, role: str = "hq", tenants: Iterable[uuid.UUID] = ()
) -> Account:
    """An operator with both a password (the sign-in page) and an API token (the JSON)."""
    operator_id = uuid.uuid4()
    email = f"op.{operator_id.hex[:10]}@example.com"
    password, token = passwords.new_password(), new_api_token(operator_id)
    async with engine.begin() as conn:
        await add_operator(
            conn,
            operator_id=operator_id,
            email=email,
            role=role,
            tenant_ids=tenants,
            password_hash=passwords.hash_secret(password),
            token_hash=passwords.hash_secret(token),
        )
    return Account(operator_id, email, password, token)
