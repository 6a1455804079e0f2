"""`source_consent` on PostgreSQL: the upsert is `merge` in SQL (an older record changes
nothing, absence lifts no refusal), and what it stores reads back as the record."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, merge
from services.ingest.adapters.consent_store_pg import PostgresConsentStore, rounds
from services.ingest.adapters.ingest_writes_pg import IngestWrites

AT = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def stores() -> AsyncIterator[Callable[[Any], PostgresConsentStore]]:
    """Stores made in a test, their connections closed after it."""
    made: list[PostgresConsentStore] = []

    def make(engine: Any) -> PostgresConsentStore:
        made.append(PostgresConsentStore(IngestWrites(engine)))
        return made[-1]

    yield make
    for store in made:
        await store.close()


FLAGS = (None, True, False)


async def stored(engine: Any, company: str, contact: str) -> dict[str, Any] | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    text("SELECT * FROM source_consent WHERE company_id = :c AND contact = :p"),
                    {"c": company, "p": contact},
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


async def test_the_sql_upsert_is_merge(db_engine: Any, stores: Any) -> None:
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    said = (None, "all", "sms")  # the new record's preferredContactMethod ("all" lifts)
    cases = list(itertools.product(FLAGS, FLAGS, (None, "landline"), (-1, 0, 1), said))
    for i, (first, second, line, later, preferred) in enumerate(cases):
        phone = f"+1202555{i:04d}"
        old = ConsentRecord(
            Channel.SMS,
            phone,
            "website",
            AT,
            "k1",
            opted_in=first,
            marketing_opt_in=first,
            line_type=line,
            preferred="email" if line else None,
        )
        new = ConsentRecord(
            Channel.SMS,
            phone,
            "shopmonkey",
            AT + timedelta(minutes=later),
            "k2",
            opted_in=second,
            marketing_opt_in=second,
            preferred=preferred,
        )
        await store.record(company, [old])
        await store.record(company, [new])
        row = await stored(db_engine, company, phone)
        assert row is not None
        want = merge(old, new)
        got = (row["opted_in"], row["marketing_opt_in"], row["line_type"], row["preferred"])
        assert got == (want.opted_in, want.marketing_opt_in, want.line_type, want.preferred), (
            old,
            new,
        )
        assert row["event_key"] == want.event_key and row["source"] == want.source


async def test_evidence_of_a_form_is_kept(db_engine: Any, stores: Any) -> None:
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    record = ConsentRecord(
        Channel.EMAIL,
        "sam@example.com",
        "website",
        AT,
        "website:t:s1",
        opted_in=True,
        text_version="2026-03-v2",
        consented_at=AT - timedelta(seconds=30),
    )
    await store.record(
        company, [record, dataclasses.replace(record, channel=Channel.SMS, contact="+12025550123")]
    )
    row = await stored(db_engine, company, "sam@example.com")
    assert row is not None
    assert (row["text_version"], row["consented_at"]) == ("2026-03-v2", record.consented_at)


async def test_a_signed_webhooks_absurd_consent_text_is_stored_as_its_columns_hold_it(
    db_engine: Any, stores: Any
) -> None:
    """A signed webhook may carry anything in these fields. A NUL or a text longer than its
    column made PostgreSQL refuse the row (DataError), and ingest answered 503: the sender
    retried that order forever. Stored clamped and without the NUL instead."""
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    contact = "nul\x00@example.com"
    record = ConsentRecord(
        Channel.SMS,
        contact,
        "shopmonkey",
        AT,
        "k" * 400 + "\x00",
        customer_id="c\x00" + "x" * 500,
        opted_in=True,
        line_type="mobile\x00" + "y" * 100,
        text_version="v\x00\ud800" + "z" * 100,  # a lone surrogate: json.loads lets one in
    )
    await store.record(company, [record])
    row = await stored(db_engine, company, "nul@example.com")
    assert row is not None
    assert row["customer_id"] == ("c" + "x" * 500)[:100]
    assert row["line_type"] == ("mobile" + "y" * 100)[:20]
    assert row["text_version"] == ("v?" + "z" * 100)[:50]
    assert row["event_key"] == "k" * 300
    assert row["opted_in"] is True


def _sms(phone: str, at: datetime, key: str, **flags: Any) -> ConsentRecord:
    return ConsentRecord(Channel.SMS, phone, "shopmonkey", at, key, **flags)


async def test_concurrent_calls_share_a_commit_and_each_returns_once_committed(
    db_engine: Any, stores: Any
) -> None:
    """Group commit: calls that arrive while a batch commits go in the next one, so 60 calls at
    once take a few transactions, not 60 (one commit per webhook held ingest to the rate
    PostgreSQL commits at), and every call's row is there when it returns."""
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    phones = [f"+1202556{i:04d}" for i in range(60)]

    async def one(phone: str) -> dict[str, Any] | None:
        await store.record(company, [_sms(phone, AT, "k", opted_in=True)])
        return await stored(db_engine, company, phone)

    rows = await asyncio.gather(*(one(p) for p in phones))
    assert all(row is not None and row["opted_in"] is True for row in rows)
    assert store.calls == 60
    assert store.commits <= 3, store.commits


async def test_batches_of_two_processes_over_the_same_contacts_never_deadlock(
    db_engine: Any, stores: Any
) -> None:
    """The poller and a webhook process (or two ingest replicas) commit batches over the same
    contacts in whatever order their records came. Rows locked in the order of their key: no
    two batches wait on each other (in arrival order, opposite orders deadlocked, and
    PostgreSQL failed a whole batch: every webhook of it answered 5xx)."""
    one, other = stores(db_engine), stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    phones = [f"+1202558{i:04d}" for i in range(2000)]  # statements long enough to overlap
    await one.record(company, [_sms(p, AT, "k0") for p in phones])  # the rows exist
    for n in range(1, 6):
        later = AT + timedelta(minutes=n)
        await asyncio.gather(
            one.record(company, [_sms(p, later, f"a{n}") for p in phones]),
            other.record(company, [_sms(p, later, f"b{n}") for p in reversed(phones)]),
        )
    assert (one.commits, other.commits) == (6, 5)


async def test_a_contact_twice_in_one_batch_is_stored_as_one_call_after_the_other(
    db_engine: Any, stores: Any
) -> None:
    """`merge` is not associative, so a batch must not pre-merge: a refusal (False), then a
    newer True, then a newer record that says nothing, stored one after the other end with
    nothing said (None); merging the last two first would have kept the False."""
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    phone = "+12025557001"
    calls = [
        _sms(phone, AT, "k1", opted_in=False),
        _sms(phone, AT + timedelta(minutes=1), "k2", opted_in=True),
        _sms(phone, AT + timedelta(minutes=2), "k3"),
    ]
    want = merge(merge(calls[0], calls[1]), calls[2])
    assert want.opted_in is None and merge(calls[0], merge(calls[1], calls[2])).opted_in is False
    await asyncio.gather(*(store.record(company, [c]) for c in calls))
    assert store.commits == 1  # all three in one transaction (the first call started it)
    row = await stored(db_engine, company, phone)
    assert row is not None
    assert (row["opted_in"], row["event_key"]) == (None, "k3")


async def test_a_row_postgresql_refuses_fails_only_its_own_call(
    db_engine: Any, stores: Any
) -> None:
    """A record the table refuses (here a preference its check does not allow) in a shared
    batch answers Unavailable to its caller alone; the other calls of the batch commit."""
    store = stores(db_engine)
    company = f"co_{uuid.uuid4().hex[:8]}"
    good = [_sms(f"+1202558{i:04d}", AT, "k", opted_in=True) for i in range(5)]
    bad = _sms("+12025589999", AT, "bad", opted_in=True, preferred="fax")
    results = await asyncio.gather(
        *(store.record(company, [r]) for r in [*good[:2], bad, *good[2:]]),
        return_exceptions=True,
    )
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["Unavailable"] + [
        "NoneType"
    ] * 3
    for record in good:
        assert await stored(db_engine, company, record.contact) is not None
    assert await stored(db_engine, company, bad.contact) is None


def test_rounds_put_a_contact_once_per_statement_in_arrival_order() -> None:
    rows = [
        {"company_id": "c", "channel": "sms", "contact": p, "n": n}
        for n, p in enumerate(["a", "b", "a", "a", "c", "b"])
    ]
    assert [[r["n"] for r in one] for one in rounds(rows)] == [[0, 1, 4], [2, 5], [3]]
