"""What keeps a location from sending, said where an operator looks: `leadctl tenants add`
warns at once, `leadctl status` lists it per location, the dashboard shows it to operators who
see that location (real PostgreSQL; the facts are rows as the services leave them)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, time, timedelta

import psycopg
import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from sqlalchemy import insert, update

from leadctl.main import cli
from services.common.db.models import CompanyPollCursor, Lead
from services.common.db.tenants import set_hours
from services.common.domain.operators import Operator
from services.common.settings import CommonSettings
from services.ingest.bootstrap import build_dashboard
from tests.integration.leadctl.test_tenants import add_company, leadctl
from tests.support.deployment_secrets import BOX
from tests.support.read_model_rows import add_job, add_lead

pytestmark = pytest.mark.integration


def test_tenants_add_warns_at_once_about_what_keeps_the_location_from_sending(
    db_url: str,
) -> None:
    company = f"co_{uuid.uuid4().hex[:8]}"  # one whose key was never set (none by default)
    with psycopg.connect(db_url) as conn:
        conn.execute(
            "INSERT INTO shopmonkey_companies (id, name, webhook_secret, signature_scheme)"
            " VALUES (%s, 'No key', %s, 'standard')",
            (company, BOX.encrypt("whsec_" + "A" * 43)),
        )
    bare = leadctl(
        db_url, "tenants", "add", "--name", "Bare", "--company", company,
        "--location-id", f"loc_{uuid.uuid4().hex[:8]}",
    )  # fmt: skip
    assert bare.returncode == 0, bare.stderr
    assert "warning: no postal address: every email is skipped (CAN-SPAM)" in bare.stderr
    assert f"warning: no Shopmonkey API key for company {company}" in bare.stderr
    assert "warning: no opening hours" in bare.stderr

    keyed = f"co_{uuid.uuid4().hex[:8]}"
    assert add_company(db_url, keyed, "--api-key-env", "K", K="smk_x").returncode == 0
    full = leadctl(
        db_url, "tenants", "add", "--name", "Full", "--company", keyed,
        "--location-id", f"loc_{uuid.uuid4().hex[:8]}", "--address", "1 Main St, Austin TX",
    )  # fmt: skip
    assert full.returncode == 0, full.stderr
    assert "postal address" not in full.stderr and "API key" not in full.stderr


async def troubled_and_fine(db_engine, make_tenant) -> tuple[uuid.UUID, uuid.UUID]:  # type: ignore[no-untyped-def]
    """Location T: no address, no hours, its orders by poller only, a cursor 2 h old with an
    error, email skipped `email_disabled`. Location F: nothing missing."""
    troubled, _ = await make_tenant(postal_address=None, api_key="smk_t")
    fine, _ = await make_tenant(api_key="smk_f")
    now = datetime.now(UTC)
    async with db_engine.begin() as conn:
        for tenant in (troubled, fine):
            await conn.execute(
                insert(CompanyPollCursor).values(
                    company_id=tenant.shopmonkey_company_id,
                    kind="poll",
                    last_success_at=now
                    - (timedelta(hours=2) if tenant is troubled else timedelta(0)),
                    last_error="shopmonkey 401" if tenant is troubled else None,
                )
            )
        await set_hours(conn, tenant_id=fine.id, hours={d: (time(8), time(18)) for d in range(5)})
        for _ in range(3):
            lead = await add_lead(conn, troubled.id, "new")
            await conn.execute(update(Lead).where(Lead.lead_id == lead).values(source="poll"))
        await add_job(conn, troubled.id, lead, "skipped", "email_disabled", decided_minutes_ago=1)
        await add_lead(conn, fine.id, "new")
    return troubled.id, fine.id


TROUBLES = {
    "no_postal_address",
    "no_hours",
    "webhooks_failing",
    "poller_cursor_old",
    "email_provider_not_configured",
}


async def test_status_lists_each_locations_problems(
    service_env,
    db_engine,
    make_tenant,
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    troubled, fine = await troubled_and_fine(db_engine, make_tenant)
    monkeypatch.setenv("POLL_INTERVAL_SECONDS", "30")
    run = CliRunner().invoke
    raw = await asyncio.to_thread(run, cli, ["status", "--json", "--kafka-timeout", "2"])
    assert raw.exit_code == 0, raw.output
    by_id = {loc["tenant_id"]: loc for loc in json.loads(raw.output)["locations"]}
    assert {p["code"] for p in by_id[str(troubled)]["problems"]} == TROUBLES
    assert by_id[str(fine)]["problems"] == []
    text = await asyncio.to_thread(run, cli, ["status", "--kafka-timeout", "2"])
    assert "Locations: what keeps them from sending" in text.output
    assert f"({troubled})" in text.output and f"({fine})" not in text.output
    assert "! no postal address" in text.output and "last error: shopmonkey 401" in text.output


async def test_the_dashboard_shows_them_to_operators_who_see_the_location(
    db_url,
    sa_url,
    db_engine,
    make_tenant,  # type: ignore[no-untyped-def]
) -> None:
    troubled, fine = await troubled_and_fine(db_engine, make_tenant)
    dashboard = build_dashboard(
        CommonSettings(database_url=db_url),
        db_engine,
        registry=CollectorRegistry(),
        lag_reader=list,
    )

    def operator(role: str, tenants: frozenset[uuid.UUID] = frozenset()) -> Operator:
        return Operator(uuid.uuid4(), f"{role}@example.com", role, True, 0, tenants)

    hq = await dashboard.summary(operator("hq"), None, 60)
    by_id = {loc["tenant_id"]: loc for loc in hq["health"]}
    assert {p["code"] for p in by_id[str(troubled)]["problems"]} == TROUBLES
    assert by_id[str(fine)]["problems"] == []
    local = await dashboard.summary(operator("location", frozenset({fine})), None, 60)
    assert [loc["tenant_id"] for loc in local["health"]] == [str(fine)]  # only its own
    one = await dashboard.summary(operator("hq"), troubled, 60)
    assert [loc["tenant_id"] for loc in one["health"]] == [str(troubled)]
