"""The outbound service on real Kafka, PostgreSQL and the fake providers (HTTP)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest
from aiohttp import web

from schemas.base import Channel
from schemas.events import OutcomeStatus, TouchPointOutcome, dlq_topic
from services.common.domain import hops
from services.common.topics import Topics
from services.outbound.bootstrap import build
from services.outbound.entrypoints.http import create_app
from tests.conftest import tz_at_local_hour
from tests.integration.outbound.conftest import (
    dead_letters,
    outcome_records,
    outcomes,
    produce,
    produce_raw,
    running_outbound,
    send_requests,
    sends_per_command,
    settings_from_env,
    wait_final,
    whitelisted_batch,
)
from tests.support.consent import grant_sms
from tests.unit.outbound.support import FakeProviders, command

pytestmark = pytest.mark.integration


async def test_every_ledger_session_has_the_claim_functions_before_the_first_command(
    outbound_env: dict[str, str],
) -> None:
    """The service's pool defines the claim functions as it opens each connection: defined
    on a session's first claim, ~10 ms of the server's CPU a connection fell on the first
    commands after a start (or a step in load), all at once."""
    settings = settings_from_env()
    async with build(settings) as outbound:
        pool = outbound.ledger._pool
        conns = [await pool.getconn() for _ in range(settings.db_pool_size)]
        try:
            for conn in conns:
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_proc WHERE pronamespace = pg_my_temp_schema()"
                    " AND proname IN ('outbound_claim', 'outbound_claim_many')"
                )
                assert await cur.fetchone() == (2,)
        finally:
            for conn in conns:
                await pool.putconn(conn)


async def test_whitelisted_sent_once_with_the_right_payload_others_never(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)
    lead = uuid.uuid4()
    ok_email = command(tenant_id=tenant.id, lead_id=lead, at=now, email=' "Sam@Example.com" ')
    ok_sms = command(tenant_id=tenant.id, lead_id=lead, step=1, channel=Channel.SMS, at=now)
    no_email = command(tenant_id=tenant.id, at=now, email="jane.doe@gmail.com")
    no_sms = command(tenant_id=tenant.id, at=now, email="jane.doe@gmail.com", channel=Channel.SMS)
    no_address = command(tenant_id=uuid.uuid4(), at=now)  # unknown tenant
    batch = [ok_email, ok_sms, no_email, no_sms, no_address]
    await grant_sms(db_url, batch)
    await produce(kafka_bootstrap, topics, batch)

    async with running_outbound() as outbound:
        runner = web.AppRunner(create_app(outbound))
        await runner.setup()
        port = int(outbound_env["OUTBOUND_PORT"])
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            got = await outcomes(kafka_bootstrap, topics, len(batch))
            async with aiohttp.ClientSession() as http:
                health = await (await http.get(f"http://127.0.0.1:{port}/healthz")).json()
                ready = await http.get(f"http://127.0.0.1:{port}/readyz")
                metrics = await (await http.get(f"http://127.0.0.1:{port}/metrics")).text()
        finally:
            await runner.cleanup()

    by_id = {o.command_id: o for o in got}
    assert by_id[ok_email.command_id].status is OutcomeStatus.SENT
    assert by_id[ok_sms.command_id].status is OutcomeStatus.SENT
    for skipped, reason in ((no_email, "not_whitelisted"), (no_sms, "not_whitelisted"),
                            (no_address, "unknown_tenant")):  # fmt: skip
        assert (by_id[skipped.command_id].status, by_id[skipped.command_id].reason) == (
            OutcomeStatus.SKIPPED,
            reason,
        )
    [email_req] = [r for r in send_requests(providers) if r["path"] == "/v3/mail/send"]
    [sms_req] = [r for r in send_requests(providers) if r["path"].endswith("/Messages.json")]
    body = email_req["payload"]
    assert body["personalizations"][0]["to"] == [{"email": "sam@example.com"}]
    assert body["custom_args"] == {
        "command_id": str(ok_email.command_id),
        "lead_id": str(lead),
        "tenant_id": str(tenant.id),
    }
    assert "List-Unsubscribe" in body["headers"]
    assert all(f"https://chat.example.com/{lead}" in c["value"] for c in body["content"])
    assert all("1 Main St, Springfield, IL 62701" in c["value"] for c in body["content"])
    form = sms_req["payload"]
    assert (form["To"], form["From"]) == ("+12025550123", "+12025550199")
    assert f"https://chat.example.com/{lead}" in form["Body"]
    assert 1 <= int(form["ValidityPeriod"]) <= 3600
    assert form["StatusCallback"] == "http://localhost:3000/webhooks/twilio/status"
    assert by_id[ok_email.command_id].provider_message_id == email_req["message_id"]
    assert by_id[ok_sms.command_id].provider_message_id == sms_req["message_id"]
    rows = await wait_final(db_url, [c.command_id for c in batch])
    assert rows[ok_email.command_id] == "sent" and rows[no_sms.command_id] == "skipped"
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        cur = await conn.execute(
            "SELECT command_id, provider, provider_message_id FROM job_executions"
            " WHERE command_id = ANY(%s) AND status = 'sent'",
            ([ok_email.command_id, ok_sms.command_id],),
        )
        stored = {cid: (prov, pmid) for cid, prov, pmid in await cur.fetchall()}
    # delivery callbacks (ingest) find the row by the provider's id
    assert stored == {
        ok_email.command_id: ("sendgrid", email_req["message_id"]),
        ok_sms.command_id: ("twilio", sms_req["message_id"]),
    }
    assert health["status"] == "ok" and ready.status == 200
    assert 'outbound_touchpoints_total{channel="email",reason="accepted",status="sent"}' in metrics
    assert "outbound_ledger_claim_seconds_bucket" in metrics


async def test_empty_whitelist_sends_nothing_at_all(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    kafka_bootstrap: str,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEAD_EMAIL_WHITELIST", "")
    monkeypatch.setenv("DEMO_MODE", "true")  # never loosens the gate
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    batch = whitelisted_batch([tenant.id], 6).commands
    await grant_sms(db_url, batch)
    await produce(kafka_bootstrap, topics, batch)
    async with running_outbound():
        got = await outcomes(kafka_bootstrap, topics, len(batch))
    assert {(o.status, o.reason) for o in got} == {(OutcomeStatus.SKIPPED, "whitelist_empty")}
    assert send_requests(providers) == []


async def test_outside_the_window_is_deferred_with_the_next_opening(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    kafka_bootstrap: str,
    db_url: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(3))
    batch = whitelisted_batch([tenant.id], 2).commands
    await grant_sms(db_url, batch)
    await produce(kafka_bootstrap, topics, batch)
    async with running_outbound():
        got = await outcomes(kafka_bootstrap, topics, len(batch))
    assert {o.status for o in got} == {OutcomeStatus.DEFERRED}
    for o in got:
        assert o.deferred_until is not None
        assert timedelta(hours=4) <= o.deferred_until - o.decided_at <= timedelta(hours=6)
    assert send_requests(providers) == []


async def test_unparseable_command_goes_to_the_dlq_and_the_stream_moves_on(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    kafka_bootstrap: str,
    db_url: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    await produce_raw(kafka_bootstrap, topics.touchpoint_commands, str(tenant.id), b'{"nope": 1}')
    good = whitelisted_batch([tenant.id], 1).commands
    await grant_sms(db_url, good)
    await produce(kafka_bootstrap, topics, good)
    async with running_outbound():
        got = await outcomes(kafka_bootstrap, topics, 1)
        letters = await dead_letters(kafka_bootstrap, dlq_topic(topics.touchpoint_commands), 1)
    assert [o.status for o in got] == [OutcomeStatus.SENT]
    assert len(letters) == 1 and letters[0].value() == b'{"nope": 1}'
    reason = dict(letters[0].headers())["dlq.reason"].decode()
    assert reason.startswith("poison: ContractError: TouchPointCommand:")


async def test_a_command_whose_template_fails_is_recorded_failed_dead_lettered_and_passed(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)
    broken = command(tenant_id=tenant.id, at=now, template="no_such_template")
    good = command(tenant_id=tenant.id, at=now)
    await produce(kafka_bootstrap, topics, [broken, good])
    async with running_outbound():
        got = await outcomes(kafka_bootstrap, topics, 2)
        letters = await dead_letters(kafka_bootstrap, dlq_topic(topics.touchpoint_commands), 1)
    by_id = {o.command_id: o for o in got}
    assert by_id[broken.command_id].status is OutcomeStatus.FAILED  # the lead learns it
    assert by_id[broken.command_id].reason.startswith("unknown_template:")
    assert by_id[good.command_id].status is OutcomeStatus.SENT  # the stream went on
    [letter] = letters
    assert letter.value() == broken.to_bytes()
    reason = dict(letter.headers())["dlq.reason"].decode()
    assert reason.startswith("poison: UnsendableCommand: unknown_template:email/no_such_template")
    rows = await wait_final(db_url, [broken.command_id, good.command_id])
    assert rows == {broken.command_id: "failed", good.command_id: "sent"}
    assert sends_per_command(providers, [broken, good]) == {good.command_id: 1}


async def test_429_and_500_storms_still_send_each_command_exactly_once(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
) -> None:
    tenants = [(await make_tenant(timezone=tz_at_local_hour(12)))[0].id for _ in range(4)]
    batch = whitelisted_batch(tenants, 40)
    await grant_sms(db_url, batch.commands)
    providers.sendgrid.configure(
        {
            "storm": {
                "rate": 0.5,
                "seed": 5,
                "faults": [
                    {"status": 429, "retry_after": 0.05},
                    {"status": 500},
                    {"status": 500, "processed": True},  # queued, then a 500: maybe sent
                    {"status": 503},
                    {"status": None, "delay": 1.5},  # processed, answer too late: ambiguous
                ],
            }
        }
    )
    providers.twilio.configure(
        {
            "storm": {
                "rate": 0.5,
                "seed": 6,
                "faults": [
                    {"status": 429, "retry_after": 0.05},
                    {"status": 500},
                    {"status": 500, "processed": True},  # Twilio's 20500: maybe sent
                    {"status": None, "delay": 1.5},
                ],
            }
        }
    )
    await produce(kafka_bootstrap, topics, batch.commands)
    async with running_outbound():
        rows = await wait_final(db_url, batch.ids, timeout=90)
        got = await outcomes(kafka_bootstrap, topics, len(batch.ids))
    faulted = [
        r
        for r in providers.sendgrid.requests + providers.twilio.requests
        if r["status"] != 202 and r["status"] != 201
    ]
    assert len(faulted) >= 10  # it really was a storm
    assert set(rows.values()) == {"sent"}
    sends = sends_per_command(providers, batch.commands)
    assert sends == {cid: 1 for cid in batch.ids}
    assert {o.command_id for o in got if o.status is OutcomeStatus.SENT} == set(batch.ids)


async def test_an_sms_goes_only_to_a_listed_number_of_an_allowed_region(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    kafka_bootstrap: str,
    db_url: str,
) -> None:
    """The lead's email is whitelisted in every case: the phone decides (DESIGN §6 4a)."""
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)

    def sms(phone: str) -> Any:
        return command(tenant_id=tenant.id, at=now, channel=Channel.SMS, phone=phone)

    listed = sms("+12025550123")
    refused = [
        (sms("+12025550124"), "phone_not_whitelisted"),  # a stranger's number
        (sms("+19005550123"), "phone_not_whitelisted"),  # premium rate
        (sms("+442079460958"), "phone_region"),  # foreign (even were it listed)
        (sms("+15551234567"), "invalid_phone"),
    ]
    cases = {cmd.command_id: reason for cmd, reason in refused}
    batch = [listed, *(cmd for cmd, _ in refused)]
    await grant_sms(db_url, batch)
    await produce(kafka_bootstrap, topics, batch)
    async with running_outbound(lead_phone_whitelist="+12025550123, +442079460958"):
        got = {o.command_id: o for o in await outcomes(kafka_bootstrap, topics, len(batch))}
    assert got[listed.command_id].status is OutcomeStatus.SENT
    for command_id, reason in cases.items():
        assert (got[command_id].status, got[command_id].reason) == (OutcomeStatus.SKIPPED, reason)
    assert [r["payload"]["To"] for r in send_requests(providers)] == ["+12025550123"]


async def test_a_traced_commands_outcome_carries_every_hop_to_the_providers_answer(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    kafka_bootstrap: str,
) -> None:
    """The hops a command came with go on with its outcome, with when it was in Kafka, claimed
    and answered by the provider, in that order; an untraced command's outcome has none."""
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    now = datetime.now(UTC) - timedelta(seconds=1)
    start = hops.now_us()
    came: list[tuple[str, str | bytes | None]] = [
        ("hop.webhook_received", str(start - 3000).encode()),
        ("hop.order_in_kafka", str(start - 2000).encode()),
        ("hop.sequencer_decided", str(start - 1000).encode()),
    ]
    traced = command(tenant_id=tenant.id, at=now)
    plain = command(tenant_id=tenant.id, at=now)
    await produce(kafka_bootstrap, topics, [traced], headers=came)
    await produce(kafka_bootstrap, topics, [plain])

    async with running_outbound():
        got = await outcome_records(kafka_bootstrap, topics, 2)
    by_id = {TouchPointOutcome.from_bytes(m.value()).command_id: m for m in got}
    assert not by_id[plain.command_id].headers()
    headers = by_id[traced.command_id].headers()
    assert [name for name, _ in headers] == [f"hop.{name}" for name in hops.HOPS]
    at = [hops.Trace.of(headers).hops[name] for name in hops.HOPS]
    assert at[:3] == [start - 3000, start - 2000, start - 1000]
    # Kafka's timestamps are milliseconds
    assert start - 1000 <= at[3] <= at[4] + 1000 and at[4] <= at[5] <= hops.now_us()
