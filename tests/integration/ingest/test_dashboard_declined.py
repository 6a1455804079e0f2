"""Declined work brought back on the dashboard, from the real `leads` read model: per location
and in total, summed in the dashboard's one scan of `leads`, and only over the locations the
operator sees (a location operator's total leaves other locations out)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import update

from services.common.db.models import Lead
from services.common.domain.operators import Operator
from services.common.settings import CommonSettings
from services.ingest.bootstrap import build_dashboard
from tests.support.read_model_rows import add_lead

pytestmark = pytest.mark.integration


async def declined_lead(
    conn: Any, tenant: uuid.UUID, state: str, work: tuple[int, int, int, int]
) -> None:
    lead = await add_lead(conn, tenant, state)
    declined_services, declined_cents, revived_services, revived_cents = work
    await conn.execute(
        update(Lead)
        .where(Lead.lead_id == lead)
        .values(
            declined_services=declined_services,
            declined_cents=declined_cents,
            revived_services=revived_services,
            revived_cents=revived_cents,
        )
    )


def operator(role: str, tenants: frozenset[uuid.UUID] = frozenset()) -> Operator:
    return Operator(uuid.uuid4(), f"{role}@example.com", role, True, 0, tenants)


async def test_the_dashboard_sums_declined_work_per_location_in_the_operators_scope(
    db_url: str, db_engine: Any, make_tenant: Any
) -> None:
    a, _ = await make_tenant()
    b, _ = await make_tenant()
    async with db_engine.begin() as conn:
        # location A: two leads in different states (summed across states), one without
        await declined_lead(conn, a.id, "completed", (2, 80_000, 1, 30_000))
        await declined_lead(conn, a.id, "new", (1, 12_345, 0, 0))
        await add_lead(conn, a.id, "new")
        # location B: everything brought back
        await declined_lead(conn, b.id, "completed", (3, 500_000, 3, 500_000))
    dashboard = build_dashboard(
        CommonSettings(database_url=db_url),
        db_engine,
        registry=CollectorRegistry(),
        lag_reader=list,
    )

    local = await dashboard.summary(operator("location", frozenset({a.id})), None, 60)
    assert local["declined"] == {
        "followed_up": {"services": 3, "cents": 92_345},
        "brought_back": {"services": 1, "cents": 30_000},
        "value_ratio": 0.3249,
    }
    assert [(loc["tenant_id"], loc["declined"]) for loc in local["locations"]] == [
        (str(a.id), local["declined"])
    ]

    hq = await dashboard.summary(operator("hq"), None, 60)
    by_id = {loc["tenant_id"]: loc["declined"] for loc in hq["locations"]}
    assert by_id[str(a.id)] == local["declined"]
    assert by_id[str(b.id)]["brought_back"] == {"services": 3, "cents": 500_000}
    # every location of the test database (other tests' too) is in hq's total
    assert hq["declined"]["followed_up"]["cents"] >= 592_345
    assert hq["declined"]["brought_back"]["cents"] >= 530_000

    one = await dashboard.summary(operator("hq"), b.id, 60)
    assert one["declined"]["followed_up"] == {"services": 3, "cents": 500_000}
    assert one["declined"]["value_ratio"] == 1.0
