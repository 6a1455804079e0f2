"""The lead-changes → `leads` projection on the real database: idempotent, a late (older)
change never overwrites a newer row, a same-content change (replay) touches nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from schemas.base import LeadState
from schemas.events import LeadChanged, ServiceAuthorization, ServiceLine
from services.sequencer.adapters.projection import upsert
from services.sequencer.domain.effects import lead_changed
from services.sequencer.domain.lifecycle import apply_order, customer_returned
from tests.unit.sequencer.support import T0, order

pytestmark = pytest.mark.integration


def change(tenant: Any, version: int, *, state_order: str = "Estimate", **kw: Any) -> LeadChanged:
    lead = apply_order(None, order(tenant=tenant, status=state_order, **kw))
    lead.version = version
    c = lead_changed(lead, from_state=None, reason="test", now=T0)
    return LeadChanged.from_bytes(c.to_bytes())  # through the contract, as consumed


def row(db_url: str, lead_id: Any) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        found = conn.execute(
            "SELECT state, version, updated_at, projected_at FROM leads WHERE lead_id = %s",
            (lead_id,),
        ).fetchone()
    assert found is not None
    return found


async def test_projection_is_monotonic_and_idempotent(db_url: str, make_tenant: Any) -> None:
    tenant = (await make_tenant())[0].id
    v1 = change(tenant, 1)
    v2 = change(tenant, 2, state_order="RepairOrder", at=T0 + timedelta(minutes=5))
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert upsert(conn, [v1]) == 1
        first = row(db_url, v1.lead_id)
        assert first[0] == LeadState.NEW.value and first[1] == 1
        assert upsert(conn, [v1]) == 0  # redelivery
        assert upsert(conn, [v2, v1]) == 1  # newest in a batch wins
        second = row(db_url, v1.lead_id)
        assert second[0] == LeadState.APPOINTMENT_SET.value and second[1] == 2
        assert upsert(conn, [v1]) == 0  # late, older: never overwrites
        same = change(tenant, 3, state_order="RepairOrder", at=T0 + timedelta(minutes=5))
        assert upsert(conn, [same]) == 0  # newer version, same content: nothing moves
        assert row(db_url, v1.lead_id) == second
        # a later event that changed only its time (a payment after the invoice) is content:
        # else a replay, which publishes the lead again for other reasons, would move it
        paid = change(tenant, 4, state_order="RepairOrder", at=T0 + timedelta(minutes=9))
        assert upsert(conn, [paid]) == 1
        assert row(db_url, v1.lead_id)[1:3] == (4, T0 + timedelta(minutes=9))


async def test_projection_skips_leads_of_unknown_tenants(db_url: str) -> None:
    import uuid

    stray = change(uuid.uuid4(), 1)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert upsert(conn, [stray]) == 0
        assert conn.execute(
            "SELECT count(*) FROM leads WHERE lead_id = %s", (stray.lead_id,)
        ).fetchone() == (0,)


class Statements(psycopg.Cursor[Any]):
    """A cursor that counts the statements it sends (`executemany`: one per row)."""

    sent = 0

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
        Statements.sent += 1
        return super().execute(query, params, **kw)

    def executemany(self, query: Any, params_seq: Any, **kw: Any) -> None:
        rows = list(params_seq)
        Statements.sent += len(rows)
        super().executemany(query, rows, **kw)


async def test_a_batch_of_many_leads_counts_every_row_it_wrote(
    db_url: str, make_tenant: Any
) -> None:
    """A batch of several leads goes as one statement (not one per lead: each costs
    PostgreSQL and psycopg their own overhead); the count is over all its rows."""
    import uuid

    tenant = (await make_tenant())[0].id
    known = change(tenant, 1)
    with psycopg.connect(db_url, autocommit=True, cursor_factory=Statements) as conn:
        assert upsert(conn, [known]) == 1
        fresh = [change(tenant, 1, order_id=f"o-many-{i}") for i in range(3)]
        batch = [*fresh, known, change(uuid.uuid4(), 1)]  # + one unchanged, one stray
        Statements.sent = 0
        assert upsert(conn, batch) == 3
        assert Statements.sent == 1
        assert upsert(conn, batch) == 0
        assert upsert(conn, [*fresh[:2], known]) == 0
        assert [row(db_url, c.lead_id)[1] for c in fresh] == [1, 1, 1]


def declined_work(db_url: str, lead_id: Any) -> tuple[Any, ...]:
    with psycopg.connect(db_url) as conn:
        found = conn.execute(
            "SELECT declined_services, declined_cents, revived_services, revived_cents"
            " FROM leads WHERE lead_id = %s",
            (lead_id,),
        ).fetchone()
    assert found is not None
    return found


async def test_projection_writes_declined_work_and_what_was_brought_back(
    db_url: str, make_tenant: Any
) -> None:
    tenant = (await make_tenant())[0].id
    lines = [
        ServiceLine(
            service_id="svc-brakes",
            name="Brake pads",
            authorization=ServiceAuthorization.DECLINED,
            total_cents=32_000,
        ),
        ServiceLine(service_id="svc-tires", name="Tires", deferred=True, total_cents=55_000),
    ]
    lead = apply_order(
        None, order(tenant=tenant, status="Invoice", invoiced=True, service_lines=lines)
    )
    lead.version = 1
    invoiced = lead_changed(lead, from_state=None, reason="test", now=T0)
    revived = customer_returned(lead, T0 + timedelta(days=40), {"svc-tires"})
    revived.version = 2
    brought_back = lead_changed(revived, from_state=None, reason="test", now=T0)
    with psycopg.connect(db_url, autocommit=True) as conn:
        assert upsert(conn, [LeadChanged.from_bytes(invoiced.to_bytes())]) == 1
        assert declined_work(db_url, lead.lead_id) == (2, 87_000, 0, 0)
        # only the brought-back figures differ: that is a change of the row
        assert upsert(conn, [LeadChanged.from_bytes(brought_back.to_bytes())]) == 1
        assert declined_work(db_url, lead.lead_id) == (2, 87_000, 1, 55_000)


async def test_a_lone_change_on_a_connection_in_a_transaction_is_committed(
    db_url: str, make_tenant: Any
) -> None:
    """One change is sent as a lone statement only on an autocommit connection; on another it
    goes in a transaction of its own, committed before `upsert` returns."""
    tenant = (await make_tenant())[0].id
    lone = change(tenant, 1, order_id="o-lone")
    with psycopg.connect(db_url) as conn:  # not autocommit
        assert upsert(conn, [lone]) == 1
        assert row(db_url, lone.lead_id)[1] == 1  # read from another connection, meanwhile
