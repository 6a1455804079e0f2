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
from tests.integration.ingest.contact_signals.conftest import random_phone

pytestmark = pytest.mark.integration


async def test_suppress_unsuppress_and_dedupe(db_engine: Any) -> None:
    store = PostgresSignalStore(db_engine)
    phone = random_phone()
    assert await store.suppress(channel=Channel.SMS, contact=phone, reason="sms_stop", source="t")
    assert not await store.suppress(
        channel=Channel.SMS, contact=phone, reason="sms_stop", source="t"
    )
    await store.suppress(
        channel=Channel.EMAIL, contact=f"{phone}@x.co", reason="bounce", source="t"
    )
    assert await store.unsuppress(channel=Channel.SMS, contact=phone, reasons=["sms_stop"]) == 1
    # an opt-in never lifts a bounce
    assert (
        await store.unsuppress(channel=Channel.EMAIL, contact=f"{phone}@x.co", reasons=["sms_stop"])
        == 0
    )
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
