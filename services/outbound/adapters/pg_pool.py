"""The psycopg 3 async pool the ledger and the tenant directory share, and the one place that
turns PostgreSQL errors into ours: unreachable → `InfrastructureError` (retried by the use
cases); a record's data refused (DataError, IntegrityError) → `DataRejected` (never retried
as is: the record goes to the DLQ)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import DataRejected, InfrastructureError


async def open_pool(conninfo: str, *, size: int) -> AsyncConnectionPool[Any]:
    """An autocommit pool (every ledger statement is its own transaction)."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo,
        min_size=min(2, size),
        max_size=size,
        kwargs={"autocommit": True},
        open=False,
        timeout=10.0,
        name="outbound-ledger",
    )
    try:
        await pool.open(wait=True, timeout=10.0)
    except PoolTimeout as exc:
        await pool.close()
        raise InfrastructureError(f"PostgreSQL unreachable: {exc}") from exc
    return pool


@asynccontextmanager
async def connection(pool: AsyncConnectionPool[Any]) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A pooled connection; a lost server or an exhausted pool raises `InfrastructureError`,
    data PostgreSQL refuses `DataRejected` (its reason, not the values it quotes)."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise InfrastructureError(f"PostgreSQL: {exc}") from exc
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        primary = exc.diag.message_primary if exc.diag is not None else None
        reason = primary or str(exc).splitlines()[0]
        raise DataRejected(f"PostgreSQL refused: {type(exc).__name__}: {reason}") from exc
