"""`IngestWrites` on PostgreSQL: consent records and customer visits waiting at the same moment
share one transaction, and a visit carrying its order's consent commits both at once; rounds of
two processes over the same contacts and customers, of any shape, never deadlock; a row
PostgreSQL refuses fails only its own call."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord
from services.ingest.adapters.consent_store_pg import PostgresConsentStore
from services.ingest.adapters.customer_locations_pg import PostgresCustomerLocations
from services.ingest.adapters.ingest_writes_pg import IngestWrites
from services.ingest.errors import Unavailable

AT = datetime(2026, 1, 1, tzinfo=UTC)

Stores = tuple[IngestWrites, PostgresConsentStore, PostgresCustomerLocations]


@pytest.fixture
async def process() -> AsyncIterator[Callable[..., Stores]]:
    """The writer and both stores of one ingest process (each made has its own connection,
    as separate processes have), closed after the test."""
    made: list[IngestWrites] = []

    def make(engine: Any, **kw: Any) -> Stores:
        writes = IngestWrites(engine, **kw)
        made.append(writes)
        return writes, PostgresConsentStore(writes), PostgresCustomerLocations(writes)

    yield make
    for writes in made:
        await writes.close()


def _sms(phone: str, at: datetime, key: str, **flags: Any) -> ConsentRecord:
    return ConsentRecord(Channel.SMS, phone, "shopmonkey", at, key, **flags)


async def _consent_rows(engine: Any, company: str) -> dict[str, str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT contact, event_key FROM source_consent WHERE company_id = :c"),
            {"c": company},
        )
        return {contact: key for contact, key in rows}


async def test_consent_and_visits_waiting_together_share_one_commit(
    db_engine: Any, process: Any
) -> None:
    """Webhooks' consent records and visits, waiting at the same moment, go in one statement
    (two stores of their own committed twice, each its own kind)."""
    writes, consents, locations = process(db_engine)
    company, here = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4()
    phones = [f"+1202559{i:04d}" for i in range(30)]
    answers = await asyncio.gather(
        *(consents.record(company, [_sms(p, AT, f"k{p}")]) for p in phones),
        *(locations.visit(company, f"cus_{i}", here) for i in range(30)),
    )
    assert answers[:30] == [None] * 30
    assert answers[30:] == [frozenset({here})] * 30
    assert (writes.commits, writes.consent_calls, writes.visits) == (1, 30, 30)
    assert await _consent_rows(db_engine, company) == {p: f"k{p}" for p in phones}


async def test_rounds_of_two_processes_of_any_shape_never_deadlock(
    db_engine: Any, process: Any
) -> None:
    """Every round locks consent rows first, then customers, each in key order, whatever its
    shape. One process's rounds carry a contact twice (consent statements one after the other,
    then the visits), the other's are single statements (the consent upsert a CTE the visits
    read first) in the opposite order: were the single statement to lock customers first,
    the two would wait on each other and PostgreSQL would fail a whole round."""
    one, consent_one, visits_one = process(db_engine, max_round=5000)
    other, consent_other, visits_other = process(db_engine, max_round=5000)
    company, a, b = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4(), uuid.uuid4()
    phones = [f"+1202557{i:04d}" for i in range(1500)]
    customers = [f"cus_{i:04}" for i in range(1500)]
    await consent_one.record(company, [_sms(p, AT, "k0") for p in phones])  # the rows exist
    await asyncio.gather(*(visits_one.visit(company, c, a) for c in customers))
    for n in range(1, 6):
        later = AT + timedelta(minutes=n)
        before = (one.commits, other.commits)
        await asyncio.gather(
            *(consent_one.record(company, [_sms(p, later, f"a{n}")]) for p in phones),
            consent_one.record(company, [_sms(phones[0], later, f"a{n}")]),  # a contact twice
            *(visits_one.visit(company, c, a) for c in customers),
            *(consent_other.record(company, [_sms(p, later, f"b{n}")]) for p in phones[::-1]),
            *(visits_other.visit(company, c, b) for c in customers[::-1]),
        )
        # each process wrote its calls of this step in one round (the rounds overlapped)
        assert (one.commits, other.commits) == (before[0] + 1, before[1] + 1)


async def test_a_refused_consent_row_fails_only_its_call_and_the_visits_are_answered(
    db_engine: Any, process: Any
) -> None:
    """A consent record the table refuses (a preference its check does not allow), in a round
    with visits and other records: its caller gets Unavailable, the rest are committed and
    answered."""
    _, consents, locations = process(db_engine)
    company, here = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4()
    bad = _sms("+12025569999", AT, "bad", opted_in=True, preferred="fax")
    results = await asyncio.gather(
        consents.record(company, [_sms("+12025560001", AT, "first")]),  # alone: nothing waits
        locations.visit(company, "cus_1", here),
        consents.record(company, [bad]),
        consents.record(company, [_sms("+12025560002", AT, "good")]),
        locations.visit(company, "cus_2", here),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "frozenset",
        "Unavailable",
        "NoneType",
        "frozenset",
    ]
    assert "consent store" in str(results[2])
    assert await _consent_rows(db_engine, company) == {
        "+12025560001": "first",
        "+12025560002": "good",
    }


async def test_a_visit_carrying_its_orders_consent_commits_both_at_once(
    db_engine: Any, process: Any
) -> None:
    """A webhook's order: its visit carries the order's consent records, so one round trip
    commits both even with nothing else waiting (two in turn before); with other calls
    waiting, in their round like theirs."""
    writes, consents, locations = process(db_engine)
    company, here, there = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4(), uuid.uuid4()
    await locations.visit(company, "cus_1", there)
    assert writes.commits == 1
    found = await locations.visit(
        company, "cus_1", here, consent=[_sms("+12025560021", AT, "order-1")]
    )
    assert found == frozenset({here, there})
    assert (writes.commits, writes.consent_calls, writes.visits) == (2, 1, 2)
    assert await _consent_rows(db_engine, company) == {"+12025560021": "order-1"}
    answers = await asyncio.gather(
        locations.visit(company, "cus_2", here, consent=[_sms("+12025560022", AT, "order-2")]),
        consents.record(company, [_sms("+12025560023", AT, "customer-3")]),
        locations.visit(company, "cus_3", here, consent=[_sms("+12025560024", AT, "order-3")]),
    )
    assert answers == [frozenset({here}), None, frozenset({here})]
    assert (writes.commits, writes.consent_calls, writes.visits) == (3, 4, 4)
    assert len(await _consent_rows(db_engine, company)) == 4


async def test_a_refused_consent_row_fails_its_visit_alone(db_engine: Any, process: Any) -> None:
    """A visit whose consent rows the table refuses fails as a whole (its order is answered
    5xx, retried, nothing published): neither its consent nor its visit is committed, and the
    round's other calls are."""
    _, consents, locations = process(db_engine)
    company, here = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4()
    bad = _sms("+12025569998", AT, "bad", opted_in=True, preferred="fax")
    results = await asyncio.gather(
        consents.record(company, [_sms("+12025560031", AT, "first")]),  # alone: nothing waits
        locations.visit(company, "cus_bad", here, consent=[bad]),
        locations.visit(company, "cus_ok", here, consent=[_sms("+12025560032", AT, "ok")]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType", "Unavailable", "frozenset"]
    assert str(results[1]) == "consent store and customer locations: CheckViolation"
    assert await _consent_rows(db_engine, company) == {
        "+12025560031": "first",
        "+12025560032": "ok",
    }
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT customer_id FROM customer_locations WHERE company_id = :c"),
            {"c": company},
        )
        assert [r for (r,) in rows] == ["cus_ok"]


async def test_a_closed_writer_refuses_both_kinds_of_call(db_engine: Any, process: Any) -> None:
    writes, consents, locations = process(db_engine)
    await writes.close()
    with pytest.raises(Exception, match="consent store: closed"):
        await consents.record("co", [_sms("+12025560003", AT, "k")])
    with pytest.raises(Exception, match="customer locations: closed"):
        await locations.visit("co", "cus_1", uuid.uuid4())


async def test_an_id_json_cannot_carry_fails_only_its_visit(db_engine: Any, process: Any) -> None:
    """A customer id with a lone surrogate (a webhook's JSON may carry one): its visit is
    refused alone, and the consent records sharing its round are committed."""
    _, consents, locations = process(db_engine)
    company, here = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4()
    results = await asyncio.gather(
        consents.record(company, [_sms("+12025560011", AT, "first")]),  # alone: nothing waits
        consents.record(company, [_sms("+12025560012", AT, "shared")]),
        locations.visit(company, "cus_\ud800", here),
        locations.visit(company, "cus_ok", here),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "NoneType",
        "Unavailable",
        "frozenset",
    ]
    assert "customer locations" in str(results[2])
    assert set(await _consent_rows(db_engine, company)) == {"+12025560011", "+12025560012"}


async def test_closing_waits_for_the_round_in_flight_then_refuses_to_reopen(
    db_engine: Any, process: Any, db_url: str
) -> None:
    """A second close waits for the first. A round that outlives the close's wait (1 s here,
    also each statement's limit) fails, and a round still queued behind it fails too instead
    of opening a connection nobody would close. Rounds of one call each, all held back by a
    row lock but the last."""
    writes, _, locations = process(db_engine, timeout=1.0, max_round=1)
    company, a, b = f"co_{uuid.uuid4().hex[:8]}", uuid.uuid4(), uuid.uuid4()
    await locations.visit(company, "cus_1", a)  # the row exists
    async with await psycopg.AsyncConnection.connect(db_url) as holder, holder.transaction():
        await holder.execute(
            "SELECT 1 FROM customer_locations WHERE company_id = %s FOR UPDATE", (company,)
        )
        calls = []
        for customer, tenant in (("cus_1", b), ("cus_1", a), ("cus_3", a)):
            calls.append(asyncio.create_task(locations.visit(company, customer, tenant)))
            await asyncio.sleep(0.05)
        first, second = asyncio.create_task(writes.close()), asyncio.create_task(writes.close())
        await asyncio.sleep(0.2)
        assert not first.done() and not second.done()  # both wait for the round in flight
        await asyncio.gather(first, second)
    # the first timed out on the lock, the second was closed under, the third never opened one
    for call in calls:
        with pytest.raises(Unavailable):
            await call
    assert writes._conn._conn is None
