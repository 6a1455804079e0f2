"""The PostgreSQL store of the signals on the real test database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, text

from schemas.base import Channel
from services.common.db.models import JobExecution, ProviderEvent
from services.ingest.adapters.signal_store_pg import PostgresSignalStore
from services.ingest.domain.model import Consent, ConsentChange, ConsentResult
from services.ingest.domain.provider_twilio import SMS_OPT_OUT_REASONS
from tests.integration.ingest.contact_signals.conftest import random_phone

pytestmark = pytest.mark.integration


def change(phone: str, *, opted_out: bool, at: datetime, **kw: Any) -> ConsentChange:
    return ConsentChange(
        channel=Channel.SMS,
        contact=phone,
        opted_out=opted_out,
        at=at,
        provider="twilio_consent",
        event_key=kw.pop("event_key", "SM" + uuid.uuid4().hex),
        source="test",
        lifts=SMS_OPT_OUT_REASONS,
        **kw,
    )


async def test_suppress_claims_its_event_first_and_dedupes(db_engine: Any) -> None:
    store = PostgresSignalStore(db_engine)
    phone = random_phone()
    assert await store.suppress(channel=Channel.SMS, contact=phone, reason="sms_stop", source="t")
    assert not await store.suppress(
        channel=Channel.SMS, contact=phone, reason="sms_stop", source="t"
    )
    email = f"{uuid.uuid4().hex[:8]}@x.co"
    claim = ("sendgrid_suppress", uuid.uuid4().hex)
    assert await store.suppress(
        channel=Channel.EMAIL, contact=email, reason="bounce", source="t", claim=claim
    )
    async with db_engine.begin() as conn:  # somebody lifted it meanwhile
        await conn.execute(text("DELETE FROM suppressions WHERE contact = :c"), {"c": email})
    # the same event again (a replay): claimed already, nothing changes
    assert not await store.suppress(
        channel=Channel.EMAIL, contact=email, reason="bounce", source="t", claim=claim
    )
    async with db_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT 1 FROM suppressions WHERE contact = :c"), {"c": email}
        )
        assert found.first() is None


async def test_opt_outs_and_opt_ins_apply_in_the_order_they_happened(
    db_engine: Any, make_tenant: Any
) -> None:
    store = PostgresSignalStore(db_engine)
    phone = random_phone()
    t0 = datetime.now(UTC)
    stop = change(phone, opted_out=True, at=t0)
    assert (await store.consent(stop)).consent is Consent.APPLIED
    assert await sms_reasons(db_engine, phone) == {(None, "sms_stop")}
    # a START that happened before that STOP (delivered late): nothing changes
    late = change(phone, opted_out=False, at=t0 - timedelta(seconds=5))
    assert (await store.consent(late)).consent is Consent.STALE
    assert await sms_reasons(db_engine, phone) == {(None, "sms_stop")}
    # the opt-outs outbound and Twilio's callbacks wrote, on two locations, and what is no opt-out
    a, _ = await make_tenant()
    b, _ = await make_tenant()
    async with db_engine.begin() as conn:
        for tenant, reason, channel in (
            (a.id, "opted_out", "sms"),
            (b.id, "opted_out", "sms"),
            (None, "twilio_21610", "sms"),
        ):
            await conn.execute(
                text(
                    "INSERT INTO suppressions (tenant_id, channel, contact, reason) VALUES "
                    "(:t, :ch, :c, :r) ON CONFLICT DO NOTHING"
                ),
                {"t": tenant, "ch": channel, "c": phone, "r": reason},
            )
        await conn.execute(
            text(
                "INSERT INTO suppressions (tenant_id, channel, contact, reason) VALUES "
                "(:t, 'email', :c, 'bounce')"
            ),
            {"t": a.id, "c": phone},
        )
    start = change(phone, opted_out=False, at=t0 + timedelta(seconds=5))
    result = await store.consent(start)
    assert result == ConsentResult(Consent.APPLIED, 3)  # sms_stop; 21610 shares its row (NULL)
    assert await sms_reasons(db_engine, phone) == set()  # every SMS opt-out, every location
    async with db_engine.connect() as conn:
        kept = await conn.execute(
            text("SELECT reason FROM suppressions WHERE contact = :c AND channel = 'email'"),
            {"c": phone},
        )
        assert kept.scalars().all() == ["bounce"]  # an opt-in never lifts what is no opt-out
    # the same START again (a replayed webhook): claimed already, nothing changes
    assert (await store.consent(start)).consent is Consent.DUPLICATE
    # a replayed STOP after that START: claimed already, superseded, the number stays opted in
    assert (await store.consent(stop)).consent is Consent.STALE
    assert await sms_reasons(db_engine, phone) == set()


async def test_a_locations_own_opt_in_lifts_only_its_own(db_engine: Any, make_tenant: Any) -> None:
    store = PostgresSignalStore(db_engine)
    phone = random_phone()
    a, _ = await make_tenant()
    now = datetime.now(UTC)
    assert (await store.consent(change(phone, opted_out=True, at=now))).consent is Consent.APPLIED
    async with db_engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO suppressions (tenant_id, channel, contact, reason) "
                "VALUES (:t, 'sms', :c, 'opted_out')"
            ),
            {"t": a.id, "c": phone},
        )
    mine = change(phone, opted_out=False, at=now + timedelta(seconds=1), tenant_id=a.id)
    assert (await store.consent(mine)) == ConsentResult(Consent.APPLIED, 1)
    assert await sms_reasons(db_engine, phone) == {(None, "sms_stop")}  # the global STOP stays


async def sms_reasons(db_engine: Any, phone: str) -> set[tuple[Any, str]]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT tenant_id, reason FROM suppressions WHERE channel = 'sms' AND contact = :c"
            ),
            {"c": phone},
        )
        return {(r[0], r[1]) for r in rows}


async def test_units_claim_once_and_roll_back_with_a_failed_publish(db_engine: Any) -> None:
    store = PostgresSignalStore(db_engine)
    key = uuid.uuid4().hex
    async with store.unit() as unit:
        assert await unit.claim("sendgrid", [key, key + "b"]) == {key, key + "b"}
    async with store.unit() as unit:
        assert await unit.claim("sendgrid", [key, key + "c"]) == {key + "c"}

    async def failed_publish() -> None:
        async with store.unit() as unit:
            await unit.claim("sendgrid", [key + "d"])
            raise RuntimeError("Kafka failed")  # rolled back: the retry claims it again

    with pytest.raises(RuntimeError):
        await failed_publish()
    async with store.unit() as unit:
        assert await unit.claim("sendgrid", [key + "d"]) == {key + "d"}


async def test_delivery_status_only_moves_forward(db_engine: Any) -> None:
    store = PostgresSignalStore(db_engine)
    command, tenant, lead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sid = "SM" + uuid.uuid4().hex
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(JobExecution).values(
                command_id=command, tenant_id=tenant, lead_id=lead, step_index=0, channel="sms",
                template="t", status="sent", provider_message_id=sid, recipient="+12025550101",
            )
        )  # fmt: skip
    now = datetime.now(UTC)
    async with store.unit() as unit:
        row = await unit.delivery_by_message(sid, status="delivered", error=None, at=now)
        assert row is not None and (row.command_id, row.lead_id) == (command, lead)
        late = await unit.delivery_by_message(
            sid, status="sent", error=None, at=now, not_after=("delivered", "failed")
        )
        assert late is not None  # still says whose message it is
        assert (
            await unit.delivery_by_message("SMunknown", status="sent", error=None, at=now) is None
        )
    async with db_engine.connect() as conn:
        status = await conn.execute(
            text("SELECT delivery_status FROM job_executions WHERE command_id = :c"), {"c": command}
        )
        assert status.scalar() == "delivered"


async def test_prune_forgets_only_old_dedupe_keys(db_engine: Any) -> None:
    store = PostgresSignalStore(db_engine)
    old, new = f"old-{uuid.uuid4().hex}", f"new-{uuid.uuid4().hex}"
    async with db_engine.begin() as conn:
        await conn.execute(
            insert(ProviderEvent).values(
                provider="sendgrid",
                event_key=old,
                received_at=datetime.now(UTC) - timedelta(days=8),
            )
        )
        await conn.execute(insert(ProviderEvent).values(provider="sendgrid", event_key=new))
    assert await store.prune() >= 1
    async with db_engine.connect() as conn:
        keys = set(
            (await conn.execute(
                text("SELECT event_key FROM provider_events WHERE event_key IN (:a, :b)"),
                {"a": old, "b": new},
            )).scalars()
        )  # fmt: skip
    assert keys == {new}
