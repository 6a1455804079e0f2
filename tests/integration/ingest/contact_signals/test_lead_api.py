"""The lead API (chat service) through the real ingest app on real PostgreSQL and Kafka."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Any

import pytest

from schemas.events import SignalKind
from services.common.db.tenants import add_services, set_hours
from services.ingest.adapters.lead_reader_pg import issue_lead_api_key
from tests.integration.ingest.contact_signals.conftest import Stack

pytestmark = pytest.mark.integration


async def token_for(stack: Stack, tenant_id: uuid.UUID) -> dict[str, str]:
    async with stack.engine.begin() as conn:
        token = await issue_lead_api_key(conn, tenant_id=tenant_id)
    return {"Authorization": f"Bearer {token}"}


async def test_lead_view_for_chat_and_tenant_scope(stack: Stack, make_tenant: Any) -> None:
    tenant, _ = await make_tenant(timezone="America/Chicago", phone="+12025550111")
    other, _ = await make_tenant()
    async with stack.engine.begin() as conn:
        await set_hours(conn, tenant_id=tenant.id, hours={0: (time(8), time(18))})
        await add_services(conn, tenant_id=tenant.id, services=[("tint", "Window tint", 19900)])
    lead = await stack.add_lead(
        tenant.id,
        first_name="Sam",
        email="sam@example.com",
        vehicle="2019 Honda Civic",
        services=["Window tint"],
        state="engaged",
    )
    command = await stack.add_touch(tenant.id, lead, recipient="sam@example.com")
    await stack.scalar(
        "UPDATE job_executions SET delivery_status = 'delivered' WHERE command_id = :c RETURNING 1",
        c=command,
    )
    await stack.scalar(
        "INSERT INTO chat_sessions (id, tenant_id, lead_id) VALUES (:i, :t, :l) RETURNING 1",
        i=uuid.uuid4(),
        t=tenant.id,
        l=lead,
    )
    mine, theirs = await token_for(stack, tenant.id), await token_for(stack, other.id)

    resp = await stack.client.get(f"/api/leads/{lead}", headers=mine)
    assert resp.status == 200, await resp.text()
    view = await resp.json()
    assert view["firstName"] == "Sam" and view["state"] == "engaged"
    assert view["vehicle"] == "2019 Honda Civic"
    assert view["servicesOfInterest"] == ["Window tint"]
    assert view["location"]["timezone"] == "America/Chicago"
    assert view["location"]["hours"] == [{"weekday": 0, "opens": "08:00", "closes": "18:00"}]
    assert view["location"]["services"][0]["name"] == "Window tint"
    assert [(t["commandId"], t["deliveryStatus"]) for t in view["touchHistory"]] == [
        (str(command), "delivered")
    ]
    assert view["chatLink"] == f"{stack.settings.chat_base_url}/{lead}"
    assert view["chat"]["sessions"] == 1 and view["chat"]["lastActivityAt"]
    assert "email" not in view and "sam@example.com" not in await resp.text()

    other_tenant = await stack.client.get(f"/api/leads/{lead}", headers=theirs)
    nowhere = await stack.client.get(f"/api/leads/{uuid.uuid4()}", headers=mine)
    assert other_tenant.status == nowhere.status == 404
    assert await other_tenant.json() == await nowhere.json()
    assert (await stack.client.get(f"/api/leads/{lead}")).status == 401
    bad = {"Authorization": "Bearer lak_not-a-token"}
    assert (await stack.client.get(f"/api/leads/{lead}", headers=bad)).status == 401


async def test_chat_reports_signals(stack: Stack, make_tenant: Any) -> None:
    tenant, _ = await make_tenant()
    other, _ = await make_tenant()
    lead = await stack.add_lead(tenant.id, first_name="Ana")
    mine, theirs = await token_for(stack, tenant.id), await token_for(stack, other.id)
    path = f"/api/leads/{lead}/signals"
    for kind in ("chat_opened", "appointment_booked"):
        resp = await stack.client.post(path, json={"kind": kind}, headers=mine)
        assert resp.status == 202, await resp.text()
    assert (await stack.client.post(path, json={"kind": "lost"}, headers=theirs)).status == 404
    assert (await stack.client.post(path, json={"kind": "bounced"}, headers=mine)).status == 400
    records = stack.signals()
    assert [(k, s.lead_id, s.kind) for k, s in records] == [
        (str(tenant.id), lead, SignalKind.CHAT_OPENED),
        (str(tenant.id), lead, SignalKind.APPOINTMENT_BOOKED),
    ]
