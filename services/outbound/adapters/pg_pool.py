"""The psycopg 3 async pool the ledger and the tenant directory share, and the one place that
turns PostgreSQL errors into ours: unreachable → `InfrastructureError` (retried by the use
cases); a record's data refused (DataError, IntegrityError) → `DataRejected` (never retried
as is: the record goes to the DLQ)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from services.common.errors import DataRejected, InfrastructureError

#: How long any statement of outbound waits for a lock (a row, a contact) before it fails as
#: PostgreSQL being unavailable would, and is retried: one held by someone else (an operator's
#: open transaction) holds up that command, not every command behind it.
LOCK_TIMEOUT = "5s"


#: What each session gets once its connection opens (the ledger's claim functions).
Session = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


async def open_pool(
    conninfo: str, *, size: int, lock_timeout: str = LOCK_TIMEOUT, session: Session | None = None
) -> AsyncConnectionPool[Any]:
    """An autocommit pool (every ledger statement is its own transaction), each session with
    `lock_timeout` (LOCK_TIMEOUT). All `size` connections are opened at start and kept: one
    opened when commands arrive costs ~10 ms of CPU on each side (SCRAM) and the pool opens
    them one after the other, so a burst after a quiet spell (or the first after a deploy)
    waited a few hundred ms for the pool to grow. The connections are session-pinned: the
    ledger's claim functions live in each session (`pg_temp`, ledger_pg.py, defined by
    `session`), so no pooler in transaction mode (PgBouncer) may sit between; the role needs
    the database's TEMPORARY privilege (PUBLIC has it by default). `session` runs once in
    each new session, before the pool hands the connection out."""
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        conninfo,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True},
        configure=lambda conn: _session(conn, lock_timeout, session),
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


async def _session(
    conn: psycopg.AsyncConnection[Any], lock_timeout: str, session: Session | None
) -> None:
    await conn.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    if session is not None:
        await session(conn)


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
