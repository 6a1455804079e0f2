"""Fixtures of the leadctl integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest


@pytest.fixture
def scratch_db(db_url: str) -> Iterator[str]:
    """An empty database of its own (libpq URL), dropped after the test."""
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db_url.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
