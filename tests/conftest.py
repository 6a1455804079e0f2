"""Fixtures shared by every tier. Integration and e2e tests run against the real Kafka and
PostgreSQL that `make test` starts; if they do not answer, those tests FAIL (never skip)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from bench.common import delete_topics_where as delete_topics_where
from bench.common import free_port as free_port
from bench.common import tz_at_local_hour as tz_at_local_hour
from tests.support import deployment_secrets

ROOT = Path(__file__).resolve().parent.parent

# Property tests judge what the code does, not how fast a loaded CI core runs it: no per-example
# deadline (its 200 ms default fails examples at random when several test processes share a
# core), the same number of examples everywhere.
settings.register_profile("suite", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("suite")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "localhost:9092")
BASE_DB_URL = os.environ.get(
    "DATABASE_URL", "postgresql://postgres:postgres@localhost:5432/lead_orchestrator"
)
_TEST_DB = os.environ.get("TEST_DATABASE_URL") or BASE_DB_URL.rsplit("/", 1)[0] + "/" + (
    BASE_DB_URL.rsplit("/", 1)[1].split("?")[0] + "_test"
)
#: The test database of this process: each pytest-xdist worker (`gw0`, `gw1`, …) has its own,
#: since every session downgrades and upgrades its database.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_base, _query = _TEST_DB.split("?", 1) if "?" in _TEST_DB else (_TEST_DB, "")
TEST_DB_URL = (_base + (f"_{_WORKER}" if _WORKER else "")) + (f"?{_query}" if _query else "")


def _answers(hostport: str) -> bool:
    host, _, port = hostport.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "localhost", int(port)), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    if not _answers(KAFKA):
        pytest.fail(f"Kafka does not answer at {KAFKA}: run `make up` (or `make test`)")
    return KAFKA


def _fresh_database(url: str) -> None:
    """Create the test database anew (TEST_DATABASE_URL may name a private one): whatever an
    interrupted or older run left in it, every session starts from an empty schema."""
    import psycopg
    from psycopg import sql

    base, _, tail = url.rpartition("/")
    name = sql.Identifier(tail.split("?")[0])
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


@pytest.fixture(scope="session")
def db_url() -> str:
    """libpq URL of the test database, created anew and migrated to head once per session
    (the migrations' way down is tested on its own: tests/integration/leadctl)."""
    from alembic import command

    from leadctl.provision import alembic_config

    sa_url = "postgresql+psycopg://" + TEST_DB_URL.split("://", 1)[1]
    try:
        _fresh_database(TEST_DB_URL)
        config = alembic_config(sa_url)
        config.attributes["configure_logger"] = False
        # the session's fixtures come before any test's environment: the key 0010 needs
        config.attributes["secrets_encryption_keys"] = deployment_secrets.ENCRYPTION_KEY
        command.upgrade(config, "head")
    except Exception as exc:
        pytest.fail(f"PostgreSQL test database {TEST_DB_URL} unusable ({exc}): run `make up`")
    return TEST_DB_URL


@pytest.fixture(scope="session")
def sa_url(db_url: str) -> str:
    return "postgresql+psycopg://" + db_url.split("://", 1)[1]


#: Topic prefixes this session made (`new_topic_prefix`): the only ones its sweep may delete,
#: so test sessions sharing one broker (parallel workers, other checkouts) never delete each
#: other's topics.
_PREFIXES: set[str] = set()


def new_topic_prefix(kind: str = "t") -> str:
    """A fresh topic namespace (`<kind><hex>.`), deleted at the latest when the session ends."""
    prefix = f"{kind}{uuid.uuid4().hex[:10]}."
    _PREFIXES.add(prefix)
    return prefix


@pytest.fixture(scope="session", autouse=True)
def _test_topics_swept() -> Iterator[None]:
    """At the end of the session, delete what is left under this session's prefixes (a test
    that failed before its own clean-up, Faust changelogs)."""
    yield
    if _PREFIXES and _answers(KAFKA):
        delete_topics_where(KAFKA, lambda n: not n.startswith(tuple(_PREFIXES)))


@pytest.fixture
def topic_prefix() -> Iterator[str]:
    """A fresh topic namespace per test: tests never see each other's records. Every topic
    under it (including Faust's changelogs) is deleted after the test."""
    prefix = new_topic_prefix()
    yield prefix
    if _answers(KAFKA):
        delete_topics_where(KAFKA, lambda n: not n.startswith(prefix))


@pytest.fixture
def topics(kafka_bootstrap: str, topic_prefix: str) -> object:
    """Every topic of DESIGN §2 (and DLQs) under a fresh prefix, 4 partitions each (deleted
    with the prefix after the test)."""
    from services.common.kafka.admin import ensure_topics
    from services.common.topics import Topics

    names = Topics(topic_prefix)
    ensure_topics(kafka_bootstrap, partitions=4, names=names.with_dlqs())
    return names


@pytest.fixture(autouse=True)
def _deployment_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs with the test deployment's secrets (ID_SECRET, LINK_SIGNING_KEYS,
    SECRETS_ENCRYPTION_KEYS) in its environment, as every service needs them; a test of their
    absence removes them."""
    for name, value in deployment_secrets.ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def service_env(
    monkeypatch: pytest.MonkeyPatch, kafka_bootstrap: str, db_url: str, topic_prefix: str
) -> dict[str, str]:
    """Environment for a service under test: real Kafka, the test DB, this test's topics, the
    test deployment's secrets."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DATABASE_URL": db_url,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "4",
        "LOG_LEVEL": "info",
        **deployment_secrets.ENV,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


@pytest.fixture
async def db_engine(sa_url: str) -> AsyncIterator[object]:
    from services.common.db.engine import async_engine

    engine = async_engine(sa_url, pool_size=2)
    yield engine
    await engine.dispose()


#: `make_tenant` arguments that belong to the company (Shopmonkey issues them per company).
COMPANY_FIELDS = ("api_key", "webhook_secret", "signature_scheme")


@pytest.fixture
def make_tenant(db_engine: object):  # type: ignore[no-untyped-def]
    """Factory: `await make_tenant(timezone=…)` inserts a location with random ids, and its
    company when that does not exist yet (`api_key`, `webhook_secret`, `signature_scheme`:
    the company's, used only then)."""
    from services.common.db.companies import add_company, company_exists
    from services.common.db.tenants import add_tenant

    async def factory(**overrides: object):  # type: ignore[no-untyped-def]
        values: dict[str, object] = {
            "name": f"Test location {uuid.uuid4().hex[:6]}",
            "company_id": f"co_{uuid.uuid4().hex[:8]}",
            "location_id": f"loc_{uuid.uuid4().hex[:8]}",
            "timezone": "America/New_York",
            "postal_address": "1 Main St, Springfield, IL 62701",
        }
        values.update(overrides)
        company = {k: values.pop(k) for k in COMPANY_FIELDS if k in values}
        async with db_engine.begin() as conn:  # type: ignore[attr-defined]
            if not await company_exists(conn, company_id=values["company_id"]):  # type: ignore[arg-type]
                await add_company(
                    conn,
                    box=deployment_secrets.BOX,
                    company_id=values["company_id"],  # type: ignore[arg-type]
                    name=f"Test company {values['company_id']}",
                    **company,  # type: ignore[arg-type]
                )
            tenant, key = await add_tenant(conn, **values)  # type: ignore[arg-type]
        return tenant, key

    return factory
