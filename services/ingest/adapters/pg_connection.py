"""One PostgreSQL connection a store keeps for itself (autocommit, every statement bounded by
`timeout`), opened at first use and again after it was closed or lost. A pooled connection
cost a ping at checkout and a rollback at return, two more round trips a round, for stores
that write one round at a time anyway (group commit)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
from sqlalchemy.ext.asyncio import AsyncEngine


class OwnConnection:
    def __init__(self, engine: AsyncEngine, *, timeout: float) -> None:
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._timeout = timeout
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._final = False

    async def get(self) -> psycopg.AsyncConnection[Any]:
        """The connection, opened if need be; raises psycopg.Error, OSError or TimeoutError
        (an OperationalError once closed for good)."""
        if self._final:
            raise psycopg.OperationalError("the store's connection is closed for good")
        if self._conn is None or self._conn.closed:
            self._conn = None
            millis = int(self._timeout * 1000)
            conn = await asyncio.wait_for(
                psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=max(1, int(self._timeout)),
                    options=f"-c statement_timeout={millis}",
                ),
                self._timeout,
            )
            self._conn = conn
        return self._conn

    async def close(self, *, final: bool = False) -> None:
        """Close the connection; the next `get` opens another, unless `final`."""
        self._final = self._final or final
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
