"""Migrations up → down → up on a scratch database (and the companies migration's data), the
ledger's unique command_id, topic provisioning run twice, and the `make run` demo's companies
and locations provisioned on a fresh database."""

from __future__ import annotations

import os
import subprocess
import uuid

import psycopg
import pytest
from alembic import command
from confluent_kafka import Consumer, TopicPartition

from leadctl import ROOT
from leadctl.provision import alembic_config
from services.common.kafka.admin import admin_client, ensure_topics
from services.common.topics import Topics
from tests.support.deployment_secrets import BOX, ENCRYPTION_KEY
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
    "shopmonkey_companies",
    "company_poll_cursors",
    "customer_locations",
}


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


TENANT_0006 = (
    "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
    " shopmonkey_api_key, webhook_secret, signature_scheme, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
)


def test_companies_migration_moves_each_companys_key_and_secrets_and_back(scratch_db: str) -> None:
    """0006 → 0007: one company row per Shopmonkey company; its key the oldest tenant's, its
    standard secrets every tenant's (each existing per-location webhook still verifies), its
    poll cursor the oldest; tenants keep their company and location. And back down."""
    config = alembic_config("postgresql+psycopg://" + scratch_db.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    command.upgrade(config, "0006")
    a1, a2, a3, b1 = (uuid.uuid4() for _ in range(4))
    with psycopg.connect(scratch_db) as conn:
        rows = [  # company A: three locations that disagree; company B: one, legacy scheme
            (a2, "A Dallas", "co_a", "loc_2", "key-2", "whsec_c2Vjb25k", "standard", "2024-02-01"),
            (a1, "A Austin", "co_a", "loc_1", None, "whsec_Zmlyc3Q=", "standard", "2024-01-01"),
            (a3, "A Waco", "co_a", "loc_3", "key-3", "whsec_Zmlyc3Q=", "standard", "2024-03-01"),
            (b1, "B Reno", "co_b", "loc_1", "key-b", "legacy-secret", "legacy_hmac", "2024-01-05"),
        ]
        for row in rows:
            conn.execute(TENANT_0006, row)
        conn.execute(
            "INSERT INTO poller_cursors (tenant_id, kind, cursor_at, last_success_at) VALUES"
            " (%s, 'poll', '2026-05-02T00:00Z', now()), (%s, 'poll', '2026-05-01T00:00Z', now()),"
            " (%s, 'poll', '2026-05-03T00:00Z', now())",
            (a1, a2, b1),
        )
    command.upgrade(config, "0007")
    with psycopg.connect(scratch_db) as conn:
        companies = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, name, shopmonkey_api_key, webhook_secret, signature_scheme"
                " FROM shopmonkey_companies"
            )
        }
        cursors = dict(
            conn.execute("SELECT company_id, cursor_at::text FROM company_poll_cursors").fetchall()
        )
        tenants = dict(conn.execute("SELECT id, shopmonkey_company_id FROM tenants").fetchall())
    assert companies == {
        "co_a": ("A Austin", "key-2", "whsec_Zmlyc3Q= whsec_c2Vjb25k", "standard"),
        "co_b": ("B Reno", "key-b", "legacy-secret", "legacy_hmac"),
    }
    assert cursors == {"co_a": "2026-05-01 00:00:00+00", "co_b": "2026-05-03 00:00:00+00"}
    assert tenants == {a1: "co_a", a2: "co_a", a3: "co_a", b1: "co_b"}
    with psycopg.connect(scratch_db) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id)"
            " VALUES (%s, 'orphan', 'co_nobody', 'loc')",
            (uuid.uuid4(),),
        )
    command.downgrade(config, "0006")
    with psycopg.connect(scratch_db) as conn:
        back = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT id, shopmonkey_api_key, webhook_secret, signature_scheme FROM tenants"
            )
        }
        polled = dict(conn.execute("SELECT tenant_id, cursor_at::text FROM poller_cursors"))
    assert back[a3] == ("key-2", "whsec_Zmlyc3Q= whsec_c2Vjb25k", "standard")
    assert back[b1] == ("key-b", "legacy-secret", "legacy_hmac")
    assert polled[a3] == polled[a1] == "2026-05-01 00:00:00+00"


def test_customer_locations_are_seeded_from_the_leads(scratch_db: str) -> None:
    """0015 → 0016: each company's customer, the locations where the read model has leads of
    theirs (a lead without a customer id is nobody's); and back down."""
    config = alembic_config("postgresql+psycopg://" + scratch_db.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    command.upgrade(config, "0015")
    a1, a2, b1 = (uuid.uuid4() for _ in range(3))
    with psycopg.connect(scratch_db) as conn:
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name) VALUES ('co_a', 'A'), ('co_b', 'B')"
        )
        for tid, co, loc in ((a1, "co_a", "loc_1"), (a2, "co_a", "loc_2"), (b1, "co_b", "loc_1")):
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id)"
                " VALUES (%s, %s, %s, %s)",
                (tid, f"{co} {loc}", co, loc),
            )
        leads = [
            (a1, "cus_1"),
            (a1, "cus_1"),
            (a2, "cus_1"),
            (a2, "cus_2"),
            (b1, "cus_1"),
            (a1, None),
        ]
        for tid, customer in leads:
            conn.execute(
                "INSERT INTO leads (lead_id, tenant_id, state, source, version, customer_id,"
                " created_at, updated_at) VALUES (%s, %s, 'new', 'webhook', 1, %s, now(), now())",
                (uuid.uuid4(), tid, customer),
            )
    command.upgrade(config, "0016")
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute("SELECT company_id, customer_id, tenant_ids FROM customer_locations")
        seeded = {(co, cus): set(tenants) for co, cus, tenants in rows}
    assert seeded == {
        ("co_a", "cus_1"): {a1, a2},
        ("co_a", "cus_2"): {a2},
        ("co_b", "cus_1"): {b1},
    }
    command.downgrade(config, "0015")
    assert "customer_locations" not in tables(scratch_db)


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


def _companies(url: str) -> dict[str, tuple[str | None, str | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, shopmonkey_api_key, webhook_secret FROM shopmonkey_companies"
        )
        return {r[0]: (r[1], r[2]) for r in rows}


def test_0010_encrypts_stored_secrets_and_downgrade_decrypts_them(
    scratch_db: str, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """Plain-text company secrets (0007) become Fernet tokens under SECRETS_ENCRYPTION_KEYS;
    without the key the upgrade fails naming the variable and changes nothing; down again
    gives the plain text back."""
    config = alembic_config("postgresql+psycopg://" + scratch_db.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    command.upgrade(config, "0007")
    with psycopg.connect(scratch_db) as conn:
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name, shopmonkey_api_key, webhook_secret)"
            " VALUES ('co_a', 'A', 'sm-key-a', 'whsec_a1 whsec_a2'), ('co_b', 'B', NULL, NULL)"
        )
    monkeypatch.chdir(tmp_path)  # no .env / .env.local to fall back on
    monkeypatch.delenv("SECRETS_ENCRYPTION_KEYS")
    with pytest.raises(RuntimeError, match="SECRETS_ENCRYPTION_KEYS is not set"):
        command.upgrade(config, "head")
    assert _companies(scratch_db)["co_a"] == ("sm-key-a", "whsec_a1 whsec_a2")
    monkeypatch.setenv("SECRETS_ENCRYPTION_KEYS", ENCRYPTION_KEY)
    command.upgrade(config, "head")
    stored = _companies(scratch_db)
    assert stored["co_b"] == (None, None)
    key, secret = stored["co_a"]
    assert key is not None and secret is not None and "sm-key" not in key + secret
    assert (BOX.decrypt(key), BOX.decrypt(secret)) == ("sm-key-a", "whsec_a1 whsec_a2")
    command.downgrade(config, "0007")
    assert _companies(scratch_db)["co_a"] == ("sm-key-a", "whsec_a1 whsec_a2")
