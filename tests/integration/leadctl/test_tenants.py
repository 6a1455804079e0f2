"""`leadctl companies add|list`, `leadctl tenants add|list` and `leadctl secrets rotate` against
the real database: what an operator does first (a Shopmonkey company with its key and secret,
stored encrypted, then its locations)."""

from __future__ import annotations

import os
import re
import subprocess
import uuid

import pytest

from leadctl import ROOT
from services.common.secret_box import SecretBox, new_key
from tests.support.deployment_secrets import BOX, ENCRYPTION_KEY

pytestmark = pytest.mark.integration


def leadctl(
    db_url: str, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--frozen", "leadctl", *args],
        cwd=ROOT,
        env=os.environ | {"DATABASE_URL": db_url} | env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def add_company(
    db_url: str, company: str, *extra: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    return leadctl(
        db_url, "companies", "add", "--id", company, "--name", "Tint World", *extra,
        stdin=stdin, **env,
    )  # fmt: skip


def test_add_a_company_then_its_locations_secrets_stored_once(db_url: str) -> None:
    import psycopg

    company = f"co_{uuid.uuid4().hex[:8]}"
    added = add_company(db_url, company, "--api-key-env", "SM_KEY", SM_KEY="sm-very-secret")
    assert added.returncode == 0, added.stderr
    assert "API key set" in added.stdout
    assert f"/webhooks/shopmonkey/companies/{company}/order" in added.stdout
    secret = re.search(r"webhook secret \(shown once\): (whsec_\S+)", added.stdout)
    assert secret is not None
    tenants = []
    for city, location in (("Austin", "loc_a"), ("Dallas", "loc_b")):
        out = leadctl(
            db_url, "tenants", "add", "--name", f"Tint World {city}", "--company", company,
            "--location-id", f"{location}_{company}", "--timezone", "America/Chicago",
            "--state", "tx",
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        found = re.search(r"tenant ([0-9a-f-]{36})", out.stdout)
        assert found is not None
        tenants.append(found.group(1))
        assert re.search(r"website API key \(shown once\): lk_\S+", out.stdout)
        assert f"/webhooks/shopmonkey/companies/{company}/order" in out.stdout
        assert "sm-very-secret" not in out.stdout and secret.group(1) not in out.stdout
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT shopmonkey_api_key, webhook_secret FROM shopmonkey_companies WHERE id = %s",
            (company,),
        ).fetchone()
        columns = {
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'tenants'"
            )
        }
    assert row is not None and "sm-very-secret" not in str(row)  # encrypted at rest
    assert (BOX.decrypt(row[0]), BOX.decrypt(row[1])) == ("sm-very-secret", secret.group(1))
    assert not columns & {"shopmonkey_api_key", "webhook_secret", "signature_scheme"}

    companies = leadctl(db_url, "companies", "list")
    assert companies.returncode == 0, companies.stderr
    line = next(x for x in companies.stdout.splitlines() if x.startswith(company))
    assert "locations=2" in line and "api_key=set" in line and "webhook_secret=set" in line
    assert "sm-very-secret" not in companies.stdout and secret.group(1) not in companies.stdout
    listed = leadctl(db_url, "tenants", "list")
    assert listed.returncode == 0, listed.stderr
    for tenant_id in tenants:
        line = next(x for x in listed.stdout.splitlines() if tenant_id in x)
        assert company in line and "tz=America/Chicago" in line

    again = leadctl(
        db_url, "tenants", "add", "--name", "dup", "--company", company,
        "--location-id", f"loc_a_{company}",
    )  # fmt: skip
    assert again.returncode == 1 and "already exists" in again.stderr
    twice = add_company(db_url, company)
    assert twice.returncode == 1 and "already exists" in twice.stderr


def test_a_location_of_an_unknown_company_is_refused(db_url: str) -> None:
    out = leadctl(
        db_url, "tenants", "add", "--name", "x", "--company", f"co_{uuid.uuid4().hex}",
        "--location-id", "l",
    )  # fmt: skip
    assert out.returncode == 1 and "leadctl companies add" in out.stderr


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

    company = uuid.uuid4().hex
    assert add_company(db_url, company).returncode == 0
    added = leadctl(
        db_url, "tenants", "add", "--name", "Chat Co", "--company-id", company,
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


def _stored(db_url: str, company: str) -> tuple[str, str]:
    import psycopg

    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT shopmonkey_api_key, webhook_secret FROM shopmonkey_companies WHERE id = %s",
            (company,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_the_api_key_never_comes_from_the_command_line(db_url: str) -> None:
    company = f"co_{uuid.uuid4().hex[:8]}"
    argv = add_company(db_url, company, "--api-key", "sm-in-shell-history")
    assert argv.returncode == 2 and "No such option" in argv.stderr
    piped = add_company(db_url, company, "--api-key-stdin", stdin="sm-from-stdin\n")
    assert piped.returncode == 0, piped.stderr
    assert BOX.decrypt(_stored(db_url, company)[0]) == "sm-from-stdin"
    other = f"co_{uuid.uuid4().hex[:8]}"
    unset = add_company(db_url, other, "--api-key-env", "NOT_SET_ANYWHERE")
    assert unset.returncode == 2 and "NOT_SET_ANYWHERE" in unset.stderr
    given = add_company(db_url, other, "--webhook-secret-env", "WH", WH="whsec_Zmlyc3Q=", stdin="")
    assert given.returncode == 0 and "whsec_Zmlyc3Q=" not in given.stdout
    assert "API key none" in given.stdout
    assert BOX.decrypt(_stored(db_url, other)[1]) == "whsec_Zmlyc3Q="


def test_secrets_rotate_re_encrypts_every_company_under_the_newest_key(db_url: str) -> None:
    company = f"co_{uuid.uuid4().hex[:8]}"
    assert add_company(db_url, company, "--api-key-env", "K", K="sm-rotated").returncode == 0
    new = new_key()
    rotated = leadctl(
        db_url, "secrets", "rotate", SECRETS_ENCRYPTION_KEYS=f"{new},{ENCRYPTION_KEY}"
    )
    assert rotated.returncode == 0, rotated.stderr
    key, secret = _stored(db_url, company)
    assert SecretBox([new]).decrypt(key) == "sm-rotated"  # the old key is no longer needed
    assert SecretBox([new]).decrypt(secret).startswith("whsec_")
    # back under the test key (the other tests' services read with it)
    back = leadctl(db_url, "secrets", "rotate", SECRETS_ENCRYPTION_KEYS=f"{ENCRYPTION_KEY},{new}")
    assert back.returncode == 0, back.stderr
    missing = leadctl(db_url, "secrets", "rotate", SECRETS_ENCRYPTION_KEYS=new_key())
    assert missing.returncode == 1 and "SECRETS_ENCRYPTION_KEYS" in missing.stderr
    assert BOX.decrypt(_stored(db_url, company)[0]) == "sm-rotated"  # nothing half-done


def test_customer_locations_are_merged_from_the_leads_again_after_a_rollout(db_url: str) -> None:
    """`leadctl companies customer-locations`: the locations where the read model has leads
    of each customer are added to what ingest recorded (never removed); a second run adds
    nothing; an unknown company is refused by name."""
    import psycopg

    company = f"co_{uuid.uuid4().hex[:8]}"
    a, b, c = (uuid.uuid4() for _ in range(3))
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO shopmonkey_companies (id, name) VALUES (%s, 'A')", (company,))
        for tid, loc in ((a, "loc_a"), (b, "loc_b"), (c, "loc_c")):
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id)"
                " VALUES (%s, %s, %s, %s)",
                (tid, loc, company, f"{loc}_{company}"),
            )
        for tid, customer in ((a, "cus_1"), (b, "cus_1"), (b, "cus_2"), (c, None)):
            conn.execute(
                "INSERT INTO leads (lead_id, tenant_id, state, source, version, customer_id,"
                " created_at, updated_at) VALUES (%s, %s, 'new', 'webhook', 1, %s, now(), now())",
                (uuid.uuid4(), tid, customer),
            )
        # what ingest recorded meanwhile: cus_1 at c (no lead projected yet), cus_2 at b
        conn.execute(
            "INSERT INTO customer_locations (company_id, customer_id, tenant_ids) VALUES"
            " (%s, 'cus_1', ARRAY[%s]::uuid[]), (%s, 'cus_2', ARRAY[%s]::uuid[])",
            (company, c, company, b),
        )
    done = leadctl(db_url, "companies", "customer-locations", "--company", company)
    assert done.returncode == 0, done.stderr
    assert f"{company}: 1 customers gained a location" in done.stdout
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT customer_id, tenant_ids FROM customer_locations WHERE company_id = %s",
            (company,),
        )
        merged = {customer: set(tenants) for customer, tenants in rows}
    assert merged == {"cus_1": {a, b, c}, "cus_2": {b}}
    again = leadctl(db_url, "companies", "customer-locations", "--company", company)
    assert again.returncode == 0 and f"{company}: 0 customers gained" in again.stdout
    unknown = leadctl(db_url, "companies", "customer-locations", "--company", "co_nobody")
    assert unknown.returncode != 0 and "no such company: co_nobody" in unknown.stderr
