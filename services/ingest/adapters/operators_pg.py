"""Operator accounts from PostgreSQL (`OperatorStore`) and their argon2 check
(`CredentialCheck`, run in a thread: a verification takes tens of milliseconds on purpose).

An account read by id (every request of a signed-in operator) is cached `ttl` seconds, so a
disabled or reset account is refused within that; look-ups by email (sign-in) are never
cached.
"""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common import passwords
from services.common.cache import TtlCache
from services.common.db.operators import get_operator, operator_by_email, record_sign_in
from services.common.domain.operators import Operator
from services.ingest.errors import Unavailable


class PostgresOperators:
    def __init__(self, engine: AsyncEngine, *, ttl: float = 5.0) -> None:
        self._engine = engine
        self._by_id: TtlCache[uuid.UUID, Operator] = TtlCache(ttl=ttl, negative_ttl=ttl)

    async def by_email(self, email: str) -> Operator | None:
        try:
            async with self._engine.connect() as conn:
                return await operator_by_email(conn, email=email)
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc

    async def by_id(self, operator_id: uuid.UUID) -> Operator | None:
        async def load() -> Operator | None:
            try:
                async with self._engine.connect() as conn:
                    return await get_operator(conn, operator_id=operator_id)
            except (OperationalError, DBAPIError, OSError) as exc:
                raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc

        return await self._by_id.get(operator_id, load)

    async def signed_in(self, operator_id: uuid.UUID) -> None:
        async with self._engine.begin() as conn:
            await record_sign_in(conn, operator_id=operator_id)


class Argon2Credentials:
    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        return await asyncio.to_thread(passwords.verify, stored_hash, secret)
