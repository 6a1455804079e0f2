"""Migrations up → down → up on a scratch database, the ledger's unique command_id, and
topic provisioning run twice."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic import command
from confluent_kafka import Consumer, TopicPartition

from leadctl import ROOT
from leadctl.provision import alembic_config
from services.common.kafka.admin import admin_client, ensure_topics
from services.common.topics import Topics
from tests.support.phones import random_phone

pytestmark = pytest.mark.integration

TABLES = {
    "tenants",
    "leads",
    "job_executions",
    "location_hours",
    "service_catalog",
    "chat_sessions",
    "chat_messages",
    "suppressions",
    "poller_cursors",
}


@pytest.fixture
def scratch_db(db_url: str) -> Iterator[str]:
    name = f"scratch_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = db_url.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("select tablename from pg_tables where schemaname='public'")
        return {r[0] for r in rows} - {"alembic_version"}


def test_migrations_up_down_up(scratch_db: str) -> None:
    config = alembic_config("postgresql+psycopg://" + scratch_db.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    assert TABLES <= tables(scratch_db)
    command.downgrade(config, "base")
    assert tables(scratch_db) == set()
    command.upgrade(config, "head")
    assert TABLES <= tables(scratch_db)


def test_ledger_refuses_a_second_claim_of_the_same_command(db_url: str) -> None:
    command_id = uuid.uuid4()
    row = (
        "insert into job_executions (command_id, tenant_id, lead_id, step_index, channel,"
        " template, status) values (%s, %s, %s, 0, 'email', 't', 'claimed')"
    )
    with psycopg.connect(db_url) as conn:
        conn.execute(row, (command_id, uuid.uuid4(), uuid.uuid4()))
        with pytest.raises(psycopg.errors.UniqueViolation, match="uq_job_executions_command_id"):
            conn.execute(row, (command_id, uuid.uuid4(), uuid.uuid4()))


def test_suppression_is_unique_per_tenant_channel_contact_even_when_global(db_url: str) -> None:
    row = (
        "insert into suppressions (tenant_id, channel, contact, reason)"
        " values (NULL, 'sms', %s, 'stop')"
    )
    contact = random_phone()
    with psycopg.connect(db_url) as conn:
        conn.execute(row, (contact,))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(row, (contact,))


def test_topic_provisioning_is_idempotent(kafka_bootstrap: str, topic_prefix: str) -> None:
    names = Topics(topic_prefix).with_dlqs()
    try:
        first = ensure_topics(kafka_bootstrap, partitions=3, names=names)
        assert {r.action for r in first} == {"created"}
        # created means served: a reader that comes at once gets offsets, not NOT_LEADER
        reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic_prefix})
        try:
            for n in names:
                for p in range(3):
                    assert reader.get_watermark_offsets(TopicPartition(n, p), timeout=10) == (0, 0)
        finally:
            reader.close()
        second = ensure_topics(kafka_bootstrap, partitions=3, names=names)
        assert {r.action for r in second} == {"exists"}
        meta = admin_client(kafka_bootstrap).list_topics(timeout=10).topics
        assert all(len(meta[n].partitions) == 3 for n in names)
        # A different partition count is reported, never silently accepted.
        assert {r.action for r in ensure_topics(kafka_bootstrap, partitions=4, names=names)} == {
            "mismatch"
        }
    finally:
        admin_client(kafka_bootstrap).delete_topics(names, operation_timeout=10)


def test_leadctl_topics_create_twice(kafka_bootstrap: str, topic_prefix: str) -> None:
    env = os.environ | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KAFKA_TOPIC_PREFIX": topic_prefix,
        "KAFKA_PARTITIONS": "2",
    }
    cmd = ["uv", "run", "--frozen", "leadctl", "topics", "create"]
    try:
        first = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
        )
        assert first.stdout.count("created") == 10
        second = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=120
        )
        assert second.stdout.count("exists") == 10
        assert "created" not in second.stdout
    finally:
        admin_client(kafka_bootstrap).delete_topics(
            Topics(topic_prefix).with_dlqs(), operation_timeout=10
        )
