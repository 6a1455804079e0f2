"""Database engines. Nothing connects at import time: the composition roots call these."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def sync_engine(url: str, **kwargs: object) -> Engine:
    """For the CLI and migrations (`url` in SQLAlchemy form, psycopg 3 driver)."""
    return create_engine(url, pool_pre_ping=True, future=True, **kwargs)


def async_engine(url: str, *, pool_size: int = 10, max_overflow: int = 5) -> AsyncEngine:
    """For the services' asyncio paths (psycopg 3 async), a small pool per process."""
    return create_async_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
    )
