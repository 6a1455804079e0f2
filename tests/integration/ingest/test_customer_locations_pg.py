"""`customer_locations` on PostgreSQL: a visit records the location and answers every location
of the customer; visits waiting together share a statement; two visits of one customer at once
are serialised (the later answer holds the earlier location), across processes too; a lost
connection fails its round only."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from services.ingest.adapters.customer_locations_pg import KNOWN_VISITS, PostgresCustomerLocations
from services.ingest.adapters.ingest_writes_pg import MAX_ROUND, IngestWrites
from services.ingest.errors import Unavailable


@pytest.fixture
async def stores() -> AsyncIterator[Callable[..., PostgresCustomerLocations]]:
    """Stores made in a test (each with its own connection, as separate processes have),
    closed after it."""
    made: list[PostgresCustomerLocations] = []

    def make(
        engine: Any, *, max_round: int = MAX_ROUND, known: int = KNOWN_VISITS
    ) -> PostgresCustomerLocations:
        writes = IngestWrites(engine, max_round=max_round)
        made.append(PostgresCustomerLocations(writes, known=known))
        return made[-1]

    yield make
    for store in made:
        await store.close()


def company() -> str:
    return f"co_{uuid.uuid4().hex[:8]}"


async def test_a_visit_answers_every_location_of_the_customer(db_engine: Any, stores: Any) -> None:
    store = stores(db_engine)
    co, a, b = company(), uuid.uuid4(), uuid.uuid4()
    assert await store.visit(co, "cus_1", a) == {a}
    assert await store.visit(co, "cus_1", a) == {a}  # again: no location twice
    assert await store.visit(co, "cus_1", b) == {a, b}
    assert await store.visit(co, "cus_2", b) == {b}  # another customer
    assert await store.visit(company(), "cus_1", b) == {b}  # another company's customer
    assert store.known(co, "cus_1", a) and not store.known(co, "cus_3", a)
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT tenant_ids FROM customer_locations WHERE company_id = :c"
                " AND customer_id = 'cus_1'"
            ),
            {"c": co},
        )
        assert [sorted(r[0]) for r in rows] == [sorted([a, b])]


async def test_visits_waiting_together_share_a_statement(db_engine: Any, stores: Any) -> None:
    """Fifty visits asked at once go in one statement; two of one customer among them are one
    row of it, and both are answered with both locations."""
    store = stores(db_engine)
    co = company()
    tenants = [uuid.uuid4() for _ in range(50)]
    twice = uuid.uuid4()
    answers = await asyncio.gather(
        *(store.visit(co, f"cus_{i}", t) for i, t in enumerate(tenants)),
        store.visit(co, "cus_7", twice),
    )
    assert [a for i, a in enumerate(answers[:50]) if i != 7] == [
        {t} for i, t in enumerate(tenants) if i != 7
    ]
    assert answers[7] == answers[50] == {tenants[7], twice}
    assert (store.statements, store.visits) == (1, 51)


async def test_rounds_of_two_processes_over_the_same_customers_never_deadlock(
    db_engine: Any, stores: Any
) -> None:
    """The poller and a webhook process write rounds over the same customers in whatever order
    their orders came. Rows locked in the order of their key: no two rounds wait on each
    other (in arrival order, opposite orders deadlocked, and PostgreSQL failed a whole round)."""
    one, other = (stores(db_engine, max_round=2000) for _ in range(2))
    co, a, b = company(), uuid.uuid4(), uuid.uuid4()
    customers = [f"cus_{i:04}" for i in range(2000)]  # rounds long enough to overlap
    await asyncio.gather(*(one.visit(co, c, a) for c in customers))  # the rows exist
    for _ in range(5):
        await asyncio.gather(
            *(one.visit(co, c, a) for c in customers),
            *(other.visit(co, c, b) for c in reversed(customers)),
        )
    assert (one.statements, other.statements) == (6, 5)


async def test_visits_of_one_customer_at_once_are_serialised_across_processes(
    db_engine: Any, stores: Any, db_url: str
) -> None:
    """Two ingest processes take a new order of one customer at two locations at the same
    moment. Each must not answer from a snapshot without the other: the later one (it waits
    for the earlier one's row lock) answers both locations, so one of the orders is told to
    the other location. Held back by a lock until both are waiting."""
    one, other = stores(db_engine), stores(db_engine)
    co, a, b, c = company(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await one.visit(co, "cus_1", c)  # the customer's row exists: both visits update it
    async with await psycopg.AsyncConnection.connect(db_url) as holder:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM customer_locations WHERE company_id = %s FOR UPDATE", (co,)
            )
            first = asyncio.create_task(one.visit(co, "cus_1", a))
            second = asyncio.create_task(other.visit(co, "cus_1", b))
            await asyncio.sleep(0.3)
            assert not first.done() and not second.done()  # both wait on the row
        answers = {await first, await second}
    assert {a, b, c} in answers  # the later one saw the earlier one's location
    assert all(c in x for x in answers)


async def test_a_lost_connection_fails_its_round_and_the_next_visit_reconnects(
    db_engine: Any, stores: Any
) -> None:
    store = stores(db_engine)
    co, a = company(), uuid.uuid4()
    await store.visit(co, "cus_1", a)
    pid = store._writes._conn._conn.info.backend_pid  # type: ignore[union-attr]
    async with db_engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        await conn.commit()
    with pytest.raises(Unavailable, match="customer locations"):
        await store.visit(co, "cus_2", a)
    assert await store.visit(co, "cus_2", a) == {a}


async def test_known_visits_are_bounded(db_engine: Any, stores: Any) -> None:
    """The memory of recorded visits keeps the most recent ones only."""
    store = stores(db_engine, known=3)
    co, a = company(), uuid.uuid4()
    for i in range(5):
        await store.visit(co, f"cus_{i}", a)
    assert [store.known(co, f"cus_{i}", a) for i in range(5)] == [False, False, True, True, True]


async def test_close_lets_the_round_in_flight_finish_and_refuses_later_visits(
    db_engine: Any, stores: Any
) -> None:
    """A shutdown does not close the connection under a statement (its callers would get a
    5xx for a visit that may have been written), nor open a new one afterwards."""
    store = stores(db_engine)
    co, a = company(), uuid.uuid4()
    pending = [asyncio.create_task(store.visit(co, f"cus_{i}", a)) for i in range(20)]
    await asyncio.sleep(0)  # the round is on its way
    await store.close()
    assert [await p for p in pending] == [{a}] * 20
    with pytest.raises(Unavailable, match="closed"):
        await store.visit(co, "cus_late", a)
    assert store._writes._conn._conn is None  # nothing reopened


async def test_a_visit_postgresql_refuses_fails_alone_and_its_round_is_answered(
    db_engine: Any, stores: Any
) -> None:
    """A customer id over its column (what ingest's bounds keep out, should a caller not) is
    refused on its own; the visits sharing its round are recorded and answered."""
    store = stores(db_engine)
    co, a = company(), uuid.uuid4()
    results = await asyncio.gather(
        store.visit(co, "cus_ok", a), store.visit(co, "x" * 101, a), return_exceptions=True
    )
    assert results[0] == {a}
    assert isinstance(results[1], Unavailable) and "StringDataRightTruncation" in str(results[1])
    assert await store.visit(co, "cus_ok2", a) == {a}  # the connection still serves
