"""Options in DATABASE_URL (`sslmode=require`, `application_name`, `options=-c …`) reach every
PostgreSQL client the project opens: the services' SQLAlchemy async engine, outbound's psycopg
pool, the projection's psycopg connection, Alembic and leadctl. Each is observed on the
server (SHOW, current_setting, pg_stat_ssl) or by its effect."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text

from leadctl.provision import alembic_config
from services.common.db.engine import async_engine, sync_engine
from services.common.settings import CommonSettings, load_settings
from services.outbound.adapters.pg_pool import open_pool
from tests.conftest import ROOT

pytestmark = pytest.mark.integration

#: `options=-c statement_timeout=4321`, percent-encoded as a URL carries it
TIMEOUT_OPTION = "options=-c%20statement_timeout%3D4321"
PROBE = (
    "SELECT current_setting('application_name'), current_setting('statement_timeout'), "
    "(SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid())"
)


@pytest.fixture
def app_name() -> str:
    return f"i19-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def settings(db_url: str, app_name: str) -> CommonSettings:
    url = f"{db_url}?sslmode=require&application_name={app_name}&{TIMEOUT_OPTION}"
    return load_settings(CommonSettings, database_url=url)


@pytest.fixture
def scratch_db(db_url: str) -> Iterator[str]:
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield db_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


async def test_the_services_sqlalchemy_engine_gets_the_url_options(
    settings: CommonSettings, app_name: str
) -> None:
    engine = async_engine(settings.sqlalchemy_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text(PROBE))).one()
    finally:
        await engine.dispose()
    assert tuple(row) == (app_name, "4321ms", True)


async def test_outbound_pool_and_the_projection_connection_get_the_url_options(
    settings: CommonSettings, app_name: str
) -> None:
    pool = await open_pool(settings.libpq_url, size=1)
    try:
        async with pool.connection() as conn:
            row = await (await conn.execute(PROBE)).fetchone()
    finally:
        await pool.close()
    assert row == (app_name, "4321ms", True)
    # the projection's own connection (adapters/projection.py) opens the same URL
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        assert conn.execute(PROBE).fetchone() == (app_name, "4321ms", True)


def test_alembic_keeps_percent_encoded_options(settings: CommonSettings, app_name: str) -> None:
    """Alembic's ini-style config would read `%20` as an interpolation and refuse the URL."""
    config = alembic_config(settings.sqlalchemy_url)
    engine = sync_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.connect() as conn:
            row = conn.execute(text(PROBE)).one()
    finally:
        engine.dispose()
    assert tuple(row) == (app_name, "4321ms", True)


def leadctl(args: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadctl.main", *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_leadctl_migrate_runs_alembic_with_the_url_options(scratch_db: str) -> None:
    """A read-only session option makes the migration fail: the option reached Alembic."""
    read_only = f"{scratch_db}?sslmode=require&options=-c%20default_transaction_read_only%3Don"
    refused = leadctl(["migrate", "up"], read_only)
    assert refused.returncode != 0
    assert "read-only transaction" in refused.stdout + refused.stderr
    done = leadctl(["migrate", "up"], f"{scratch_db}?sslmode=require&{TIMEOUT_OPTION}")
    assert done.returncode == 0, done.stdout + done.stderr


def test_leadctl_queries_with_the_url_options(db_url: str) -> None:
    """A search_path option that hides the tables makes `tenants list` fail: it reached the
    CLI's engine."""
    hidden = leadctl(["tenants", "list"], f"{db_url}?options=-c%20search_path%3Dno_such_schema")
    assert hidden.returncode != 0
    assert 'relation "tenants" does not exist' in hidden.stdout + hidden.stderr
    assert leadctl(["tenants", "list"], f"{db_url}?sslmode=require").returncode == 0
