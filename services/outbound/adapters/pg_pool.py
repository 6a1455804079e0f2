"""The psycopg 3 async pool the ledger and the tenant directory share, and the one place that
turns PostgreSQL being unreachable into an `InfrastructureError` (retried by the use cases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import InfrastructureError


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
    """A pooled connection; a lost server or an exhausted pool raises `InfrastructureError`."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, PoolTimeout) as exc:
        raise InfrastructureError(f"PostgreSQL: {exc}") from exc
