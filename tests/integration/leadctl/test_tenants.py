"""`leadctl tenants add|list` against the real database: what an operator does first."""

from __future__ import annotations

import os
import re
import subprocess
import uuid

import pytest

from leadctl import ROOT

pytestmark = pytest.mark.integration


def leadctl(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DATABASE_URL": db_url}
    return subprocess.run(
        ["uv", "run", "--frozen", "leadctl", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_add_then_list_a_location_without_printing_secrets(db_url: str) -> None:
    company, location = f"co_{uuid.uuid4().hex[:8]}", f"loc_{uuid.uuid4().hex[:8]}"
    added = leadctl(
        db_url,
        "tenants",
        "add",
        "--name",
        "Tint World Austin",
        "--company-id",
        company,
        "--location-id",
        location,
        "--api-key",
        "sm-very-secret",
        "--timezone",
        "America/Chicago",
        "--state",
        "tx",
    )
    assert added.returncode == 0, added.stderr
    tenant_id = re.search(r"tenant ([0-9a-f-]{36})", added.stdout)
    assert tenant_id is not None
    assert re.search(r"website API key \(shown once\): lk_\S+", added.stdout)
    assert re.search(r"webhook secret: whsec_\S+", added.stdout)

    listed = leadctl(db_url, "tenants", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if tenant_id.group(1) in x)
    assert company in line and "tz=America/Chicago" in line and "api_key=set" in line
    assert "sm-very-secret" not in listed.stdout

    again = leadctl(
        db_url,
        "tenants",
        "add",
        "--name",
        "dup",
        "--company-id",
        company,
        "--location-id",
        location,
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr


def test_unknown_timezone_is_refused(db_url: str) -> None:
    out = leadctl(
        db_url,
        "tenants",
        "add",
        "--name",
        "x",
        "--company-id",
        "c",
        "--location-id",
        "l",
        "--timezone",
        "Mars/Olympus",
    )
    assert out.returncode == 2
    assert "unknown timezone" in out.stderr


def test_bad_configuration_names_the_variable(db_url: str) -> None:
    env_bad = leadctl("mysql://nope", "tenants", "list")
    assert env_bad.returncode == 1
    assert "DATABASE_URL" in env_bad.stderr


def test_lead_api_key_is_issued_once_and_only_for_a_known_tenant(db_url: str) -> None:
    import psycopg

    added = leadctl(
        db_url, "tenants", "add", "--name", "Chat Co", "--company-id", uuid.uuid4().hex,
        "--location-id", uuid.uuid4().hex,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    found = re.search(r"tenant ([0-9a-f-]{36})", added.stdout)
    assert found is not None
    tenant_id = found.group(1)
    issued = leadctl(db_url, "tenants", "lead-api-key", tenant_id)
    assert issued.returncode == 0, issued.stderr
    token = issued.stdout.strip().splitlines()[-1]
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT lead_api_key_sha256 FROM tenants WHERE id = %s", (tenant_id,)
        ).fetchone()
    import hashlib

    assert row is not None and row[0] == hashlib.sha256(token.encode()).hexdigest()
    unknown = leadctl(db_url, "tenants", "lead-api-key", str(uuid.uuid4()))
    assert unknown.returncode != 0 and "no tenant" in unknown.stderr
