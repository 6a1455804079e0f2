"""`source_consent` on PostgreSQL: the upsert is `merge` in SQL (an older record changes
nothing, absence lifts no refusal), and what it stores reads back as the record."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, merge
from services.ingest.adapters.consent_store_pg import PostgresConsentStore

AT = datetime(2026, 1, 1, tzinfo=UTC)
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


async def test_the_sql_upsert_is_merge(db_engine: Any) -> None:
    store = PostgresConsentStore(db_engine)
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


async def test_evidence_of_a_form_is_kept(db_engine: Any) -> None:
    store = PostgresConsentStore(db_engine)
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
    db_engine: Any,
) -> None:
    """A signed webhook may carry anything in these fields. A NUL or a text longer than its
    column made PostgreSQL refuse the row (DataError), and ingest answered 503: the sender
    retried that order forever. Stored clamped and without the NUL instead."""
    store = PostgresConsentStore(db_engine)
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
        text_version="v\x00" + "z" * 100,
    )
    await store.record(company, [record])
    row = await stored(db_engine, company, "nul@example.com")
    assert row is not None
    assert row["customer_id"] == ("c" + "x" * 500)[:100]
    assert row["line_type"] == ("mobile" + "y" * 100)[:20]
    assert row["text_version"] == ("v" + "z" * 100)[:50]
    assert row["event_key"] == "k" * 300
    assert row["opted_in"] is True
