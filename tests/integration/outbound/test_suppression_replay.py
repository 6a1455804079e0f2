"""Suppressions (written by ingest's webhooks into PostgreSQL) take effect at once; Twilio 21610
writes one; record-only (replay) commands are gated and recorded, never sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from fakes.twilio_server import OPTOUTS
from schemas.base import Channel
from schemas.events import OutcomeStatus, TouchPointOutcome
from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.integration.outbound.conftest import (
    outcomes,
    produce,
    running_outbound,
    send_requests,
    wait_final,
)
from tests.support.consent import grant_sms
from tests.support.phones import random_phone
from tests.unit.outbound.support import FakeProviders, command

pytestmark = pytest.mark.integration


async def _outcome_of(
    bootstrap: str, topics: Topics, command_id: uuid.UUID, timeout: float = 30.0
) -> TouchPointOutcome:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        for o in await outcomes(bootstrap, topics, 10**6, timeout=1.0):
            if o.command_id == command_id:
                return o
    pytest.fail(f"no outcome for {command_id}")


async def test_a_suppression_written_by_ingest_applies_to_the_very_next_command(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)
    phone = random_phone()
    first = command(tenant_id=tenant.id, channel=Channel.SMS, phone=phone, at=now)
    # the customer writes it differently on another estimate; the ledger compares normalised
    second = command(
        tenant_id=tenant.id,
        channel=Channel.SMS,
        phone=f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}",
        at=now,
    )
    async with running_outbound(lead_phone_whitelist=phone):
        await grant_sms(db_url, [first])
        await produce(kafka_bootstrap, topics, [first])
        assert (await _outcome_of(kafka_bootstrap, topics, first.command_id)).status is (
            OutcomeStatus.SENT
        )
        # ingest got "STOP": it writes the suppression (tenant, channel, normalised contact)
        async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
            await conn.execute(
                "INSERT INTO suppressions (tenant_id, channel, contact, reason, source)"
                " VALUES (%s, 'sms', %s, 'opted_out', 'twilio_inbound')",
                (tenant.id, phone),
            )
        await grant_sms(db_url, [second])
        await produce(kafka_bootstrap, topics, [second])
        blocked = await _outcome_of(kafka_bootstrap, topics, second.command_id)
    assert (blocked.status, blocked.reason) == (OutcomeStatus.SKIPPED, "suppressed")
    sms_posts = [r for r in send_requests(providers) if r["payload"]["To"] == phone]
    assert len(sms_posts) == 1  # only the first


async def test_twilio_21610_fails_the_command_and_writes_a_suppression(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    phone = random_phone()
    providers.twilio_app[OPTOUTS].add(phone)  # Twilio knows the STOP: it answers 400 21610
    cmd = command(tenant_id=tenant.id, channel=Channel.SMS, phone=phone, at=datetime.now(UTC))
    await grant_sms(db_url, [cmd])
    await produce(kafka_bootstrap, topics, [cmd])
    async with running_outbound(lead_phone_whitelist=phone):
        got = await _outcome_of(kafka_bootstrap, topics, cmd.command_id)
    assert (got.status, got.reason) == (OutcomeStatus.FAILED, "twilio_21610_opted_out")
    assert len(send_requests(providers)) == 1  # no retry of a permanent rejection
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT tenant_id, channel, reason FROM suppressions WHERE contact = %s", (phone,)
        )
        assert await cur.fetchall() == [(tenant.id, "sms", "opted_out")]


async def test_record_only_commands_are_gated_and_recorded_never_sent(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)
    sent_live = command(tenant_id=tenant.id, at=now)
    allowed = command(tenant_id=tenant.id, channel=Channel.SMS, at=now, record_only=True)
    stranger = command(tenant_id=tenant.id, at=now, record_only=True, email="jane@gmail.com")
    replay_of_sent = sent_live.model_copy(update={"record_only": True})
    live_after_replay = allowed.model_copy(update={"record_only": False})

    await grant_sms(db_url, [sent_live])

    await produce(kafka_bootstrap, topics, [sent_live])
    async with running_outbound():
        await _outcome_of(kafka_bootstrap, topics, sent_live.command_id)
        await grant_sms(db_url, [allowed, stranger, replay_of_sent])
        await produce(kafka_bootstrap, topics, [allowed, stranger, replay_of_sent])
        await wait_final(db_url, [allowed.command_id, stranger.command_id])
        await grant_sms(db_url, [live_after_replay])
        await produce(kafka_bootstrap, topics, [live_after_replay])
        got = await outcomes(kafka_bootstrap, topics, 5)
    by_id: dict[uuid.UUID, list[TouchPointOutcome]] = {}
    for o in got:
        by_id.setdefault(o.command_id, []).append(o)
    [live] = by_id[sent_live.command_id][:1]
    assert live.status is OutcomeStatus.SENT
    replayed = by_id[sent_live.command_id][1]
    assert replayed.duplicate and replayed.status is OutcomeStatus.SENT
    [recorded, again] = by_id[allowed.command_id]
    assert (recorded.status, recorded.reason) == (OutcomeStatus.RECORDED, "record_only")
    assert again.duplicate and again.status is OutcomeStatus.RECORDED
    [skipped] = by_id[stranger.command_id]
    assert (skipped.status, skipped.reason) == (OutcomeStatus.SKIPPED, "not_whitelisted")
    posts = send_requests(providers)
    assert len(posts) == 1 and posts[0]["payload"]["custom_args"]["command_id"] == str(
        sent_live.command_id
    )
    rows = await wait_final(db_url, [allowed.command_id, stranger.command_id])
    assert rows == {allowed.command_id: "recorded", stranger.command_id: "skipped"}
