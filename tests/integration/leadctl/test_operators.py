"""`leadctl operators add|list|disable|enable|reset` against the real database: the password or
API token is shown once and stored as an argon2 hash; reset and disable end every session."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest
from argon2 import PasswordHasher

from tests.integration.leadctl.test_tenants import leadctl

pytestmark = pytest.mark.integration


def _row(db_url: str, email: str) -> tuple[str | None, str | None, bool, int, str]:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT password_hash, token_hash, active, session_epoch, role FROM operators"
            " WHERE email = %s",
            (email,),
        ).fetchone()
    assert row is not None
    return row


async def test_operators_lifecycle(db_url: str, make_tenant) -> None:  # type: ignore[no-untyped-def]
    tenant, _ = await make_tenant()
    email = f"Ops.{uuid.uuid4().hex[:8]}@Example.com"
    added = leadctl(
        db_url, "operators", "add", email, "--role", "location", "--tenant", str(tenant.id)
    )
    assert added.returncode == 0, added.stderr
    password = re.search(r"password \(shown once\): (\S+)", added.stdout)
    assert password is not None
    stored, token_hash, active, epoch, role = _row(db_url, email.lower())
    assert stored is not None and stored.startswith("$argon2id$") and token_hash is None
    assert password.group(1) not in stored and PasswordHasher().verify(stored, password.group(1))
    assert (active, epoch, role) == (True, 0, "location")

    listed = leadctl(db_url, "operators", "list")
    line = next(x for x in listed.stdout.splitlines() if email.lower() in x)
    assert "location" in line and str(tenant.id) in line and "never" in line
    assert "$argon2" not in listed.stdout and password.group(1) not in listed.stdout

    reset = leadctl(db_url, "operators", "reset", email)
    assert reset.returncode == 0, reset.stderr
    new = re.search(r"\(shown once\): (\S+)", reset.stdout)
    assert new is not None and new.group(1) != password.group(1)
    after, _, _, epoch, _ = _row(db_url, email.lower())
    assert PasswordHasher().verify(after, new.group(1)) and epoch == 1  # sessions ended

    assert leadctl(db_url, "operators", "disable", email).returncode == 0
    assert _row(db_url, email.lower())[2:4] == (False, 2)
    assert leadctl(db_url, "operators", "enable", email).returncode == 0
    assert _row(db_url, email.lower())[2] is True

    bot = f"bot.{uuid.uuid4().hex[:8]}@example.com"
    token = leadctl(db_url, "operators", "add", bot, "--role", "hq", "--token")
    found = re.search(r"API token \(shown once\): (lop_[0-9a-f]{32}_\S+)", token.stdout)
    assert found is not None, token.stdout
    password_hash, token_hash, *_ = _row(db_url, bot)
    assert password_hash is None and PasswordHasher().verify(token_hash, found.group(1))


def test_operators_add_refuses_what_makes_no_sense(db_url: str) -> None:
    email = f"x.{uuid.uuid4().hex[:8]}@example.com"
    no_tenant = leadctl(db_url, "operators", "add", email, "--role", "location")
    assert no_tenant.returncode == 2 and "--tenant" in no_tenant.stderr
    unknown = leadctl(
        db_url, "operators", "add", email, "--role", "location", "--tenant", str(uuid.uuid4())
    )
    assert unknown.returncode == 1 and "no tenant" in unknown.stderr
    assert leadctl(db_url, "operators", "add", email, "--role", "hq").returncode == 0
    twice = leadctl(db_url, "operators", "add", email.upper(), "--role", "hq")
    assert twice.returncode == 1 and "exists already" in twice.stderr
    assert leadctl(db_url, "operators", "reset", "nobody@example.com").returncode == 1
