"""A demo that tells the truth (`leadctl run` with the simulator): its locations are there by
their fixed ids on any database (fresh, with a real location already, a second run, secrets
stored under other keys), and the banner counts only this run's sends to its demo addresses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from alembic import command

from fakes.shopmonkey.data import World
from leadctl.provision import alembic_config
from leadctl.run.banner import banner_line, first_demo_decision, recently_sent_to
from leadctl.run.demo import DEMO_PHONES, SIM_COMPANIES, SIM_SEED, DemoContacts
from leadctl.run.demo_locations import provision_demo_locations
from services.common.secret_box import SecretBox, new_key
from tests.support.deployment_secrets import BOX

pytestmark = pytest.mark.integration
WORLD = World(seed=SIM_SEED, layout=SIM_COMPANIES)


def migrated(scratch_db: str) -> str:
    """`scratch_db` at head; its SQLAlchemy URL."""
    sa_url = "postgresql+psycopg://" + scratch_db.split("://", 1)[1]
    config = alembic_config(sa_url)
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")
    return sa_url


def demo_rows(url: str) -> tuple[set[tuple[str, str, str]], set[tuple[uuid.UUID, str, str]]]:
    with psycopg.connect(url) as conn:
        companies = set(
            conn.execute("SELECT id, shopmonkey_api_key, webhook_secret FROM shopmonkey_companies")
        )
        tenants = set(
            conn.execute(
                "SELECT id, shopmonkey_company_id, shopmonkey_location_id FROM tenants"
                " WHERE shopmonkey_company_id = ANY(%s)",
                ([c.company_id for c in WORLD.companies],),
            )
        )
    return companies, tenants


def expected_tenants() -> set[tuple[uuid.UUID, str, str]]:
    return {(loc.tenant_id, loc.company.company_id, loc.location_id) for loc in WORLD.locations}


def add_real_location(url: str) -> uuid.UUID:
    """A real-looking location, as `leadctl companies add` + `tenants add` leave it."""
    tenant = uuid.uuid4()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name, webhook_secret, signature_scheme)"
            " VALUES ('co_realshop', 'Real Shop', %s, 'standard')",
            (BOX.encrypt("whsec_" + "A" * 43),),
        )
        conn.execute(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
            " timezone) VALUES (%s, 'Real Shop Main St', 'co_realshop', 'loc_main',"
            " 'America/New_York')",
            (tenant,),
        )
    return tenant


async def test_a_fresh_database_gets_every_demo_company_and_location(scratch_db: str) -> None:
    sa_url = migrated(scratch_db)
    done = await provision_demo_locations(sa_url, box=BOX)
    assert len(done.lines) == 3 and not done.problems and SIM_COMPANIES == (2, 1)
    companies, tenants = demo_rows(scratch_db)
    # stored encrypted (SECRETS_ENCRYPTION_KEYS), the simulator's values once decrypted
    assert {(c, BOX.decrypt(k), BOX.decrypt(s)) for c, k, s in companies} == {
        (c.company_id, c.api_key, c.webhook_secret) for c in WORLD.companies
    }
    assert tenants == expected_tenants()


async def test_a_database_with_a_real_location_still_gets_the_demo_locations(
    scratch_db: str,
) -> None:
    """The case that sent every simulated webhook to 404 `unknown tenant`."""
    sa_url = migrated(scratch_db)
    real = add_real_location(scratch_db)
    done = await provision_demo_locations(sa_url, box=BOX)
    assert not done.problems and all(line.endswith("added") for line in done.lines), done
    assert demo_rows(scratch_db)[1] == expected_tenants()
    with psycopg.connect(scratch_db) as conn:
        kept = conn.execute("SELECT name FROM tenants WHERE id = %s", (real,)).fetchone()
    assert kept == ("Real Shop Main St",)


async def test_a_second_run_keeps_them_and_moves_the_first_to_midday(scratch_db: str) -> None:
    sa_url = migrated(scratch_db)
    morning = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)
    await provision_demo_locations(sa_url, box=BOX, now=morning)
    first = WORLD.locations[0].tenant_id
    with psycopg.connect(scratch_db) as conn:
        conn.execute("UPDATE tenants SET active = false WHERE id = %s", (first,))
        conn.execute("DELETE FROM location_hours WHERE tenant_id = %s", (first,))
    later = morning + timedelta(hours=9)
    again = await provision_demo_locations(sa_url, box=BOX, now=later)
    assert not again.problems and all("kept" in line for line in again.lines), again
    assert demo_rows(scratch_db)[1] == expected_tenants()
    with psycopg.connect(scratch_db) as conn:
        zone, active = conn.execute(
            "SELECT timezone, active FROM tenants WHERE id = %s", (first,)
        ).fetchone()  # type: ignore[misc]
        hours = conn.execute(
            "SELECT count(*) FROM location_hours WHERE tenant_id = %s", (first,)
        ).fetchone()
        services = conn.execute(
            "SELECT count(*) FROM service_catalog WHERE tenant_id = %s", (first,)
        ).fetchone()
    local = later.astimezone(ZoneInfo(zone))
    assert active and abs(local.hour - 13) <= 1, (zone, local)
    assert hours == (7,) and services == (4,)  # hours back, catalog not doubled


async def test_secrets_stored_under_other_keys_are_replaced(scratch_db: str) -> None:
    """A checkout whose .env.local was regenerated: the stored demo secrets no longer decrypt,
    so ingest could verify no webhook; the run stores them again under the current keys."""
    sa_url = migrated(scratch_db)
    await provision_demo_locations(sa_url, box=SecretBox([new_key()]))
    await provision_demo_locations(sa_url, box=BOX)
    companies, _ = demo_rows(scratch_db)
    assert {(c, BOX.decrypt(s)) for c, _, s in companies} == {
        (c.company_id, c.webhook_secret) for c in WORLD.companies
    }


async def test_a_location_registered_under_another_id_is_named_with_the_fix(
    scratch_db: str,
) -> None:
    sa_url = migrated(scratch_db)
    await provision_demo_locations(sa_url, box=BOX)
    location = WORLD.locations[2]
    other = uuid.uuid4()
    with psycopg.connect(scratch_db) as conn:
        for table in ("location_hours", "service_catalog"):
            conn.execute(f"DELETE FROM {table} WHERE tenant_id = %s", (location.tenant_id,))
        conn.execute("UPDATE tenants SET id = %s WHERE id = %s", (other, location.tenant_id))
    done = await provision_demo_locations(sa_url, box=BOX)
    [problem] = done.problems
    assert f"registered as tenant {other}" in problem and "remove that tenant" in problem


def add_send(
    url: str, recipient: str, *, status: str = "sent", minutes_ago: float, reason: str = "ok"
) -> None:
    """One ledger row of a location of its own (the banner reads nothing else)."""
    tenant, lead = uuid.uuid4(), uuid.uuid4()
    decided = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    channel = "sms" if recipient.startswith("+") else "email"
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name, webhook_secret, signature_scheme)"
            " VALUES (%s, 'x', %s, 'standard') ON CONFLICT DO NOTHING",
            (f"co_{tenant.hex[:8]}", BOX.encrypt("whsec_x")),
        )
        conn.execute(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id)"
            " VALUES (%s, 'x', %s, 'loc')",
            (tenant, f"co_{tenant.hex[:8]}"),
        )
        conn.execute(
            "INSERT INTO job_executions (command_id, tenant_id, lead_id, step_index, channel,"
            " template, recipient, status, reason, attempts, due_at, claimed_at, decided_at)"
            " VALUES (%s, %s, %s, 0, %s, 't', %s, %s, %s, 1, %s, %s, %s)",
            (uuid.uuid4(), tenant, lead, channel, recipient, status, reason, *[decided] * 3),
        )


def test_the_banner_counts_only_this_runs_sends_to_its_demo_addresses(scratch_db: str) -> None:
    migrated(scratch_db)
    earlier = DemoContacts.for_run("aaaaaa")
    this = DemoContacts.for_run("bbbbbb", used_phones={earlier.phone})
    recipients = [*this.emails, this.phone]
    since = datetime.now(UTC) - timedelta(minutes=1)
    add_send(scratch_db, earlier.emails[0], minutes_ago=30)  # an earlier run
    add_send(scratch_db, this.emails[0], minutes_ago=5)  # before this run started
    add_send(scratch_db, "jane.doe@gmail.com", minutes_ago=0)  # this run, not a demo address
    with psycopg.connect(scratch_db) as conn:
        assert first_demo_decision(conn, since=since, recipients=recipients) is None
    add_send(scratch_db, this.emails[1], status="skipped", reason="frequency_cap", minutes_ago=0)
    with psycopg.connect(scratch_db) as conn:
        skipped = first_demo_decision(conn, since=since, recipients=recipients)
    assert skipped is not None
    said = banner_line(skipped, 4.0)
    assert "no demo touch point sent yet" in said and "frequency_cap" in said
    add_send(scratch_db, this.phone, minutes_ago=0)
    with psycopg.connect(scratch_db) as conn:
        sent = first_demo_decision(conn, since=since, recipients=recipients)
    assert sent == ("sent", "sms", this.phone, "ok")
    assert banner_line(sent, 3.2).startswith(
        f"first touch point sent to the demo address (sms to {this.phone}) by this run"
    )
    # the next run's number is not one sent to within the frequency cap's day
    used = recently_sent_to(scratch_db, DEMO_PHONES)
    assert used == {this.phone}
    assert DemoContacts.for_run("bbbbbb", used_phones=used).phone != this.phone
