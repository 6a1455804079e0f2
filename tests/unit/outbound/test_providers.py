"""The real `sendgrid` and `twilio` libraries against the fake servers on loopback: payloads,
and how every failure is classified (retry / reconcile / reject)."""

from __future__ import annotations

import dataclasses
import json
import socket
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from twilio.rest import Client

from schemas.base import Channel
from services.common.domain.signed_links import read_unsubscribe_token
from services.outbound.adapters.sendgrid_sender import SendGridSender
from services.outbound.adapters.twilio_http import RoutedAsyncHttpClient
from services.outbound.adapters.twilio_sender import TwilioSender
from services.outbound.domain.model import (
    Found,
    NotFound,
    Probe,
    SmsMessage,
    Unverifiable,
)
from services.outbound.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER
from tests.unit.outbound.support import (
    OPEN_NOW,
    FakeProviders,
    command,
    email_message,
    fake_providers,
    real_senders,
    renderer,
    tenant_profile,
)


@pytest.fixture
async def providers() -> AsyncIterator[FakeProviders]:
    async with fake_providers() as p:
        yield p


def sms_message(phone: str = "+12025550123") -> SmsMessage:
    """A rendered SMS, approved by the gate for the number it goes to (as the handler does)."""
    cmd = command(channel=Channel.SMS, phone=phone)
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=900)
    assert isinstance(msg, SmsMessage)
    return dataclasses.replace(msg, approved_to=msg.to)


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# SendGrid -----------------------------------------------------------------------------------------
async def test_sendgrid_payload(providers: FakeProviders, executor: ThreadPoolExecutor) -> None:
    email, _ = real_senders(providers, executor)
    msg = email_message()
    msg_id = await email.send(msg)
    [req] = providers.sendgrid.requests
    assert req["path"] == "/v3/mail/send" and req["accepted"] and req["status"] == 202
    assert msg_id == req["message_id"] and len(msg_id) == 22
    body = req["payload"]
    assert body["personalizations"] == [{"to": [{"email": "sam@example.com"}]}]
    assert body["from"] == {"email": "noreply@shop.example", "name": "Tint World Springfield"}
    assert body["custom_args"] == {
        "command_id": str(msg.command_id),
        "lead_id": str(msg.lead_id),
        "tenant_id": str(msg.tenant_id),
    }
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # one signed HTTPS link (RFC 8058 one-click), no mailto: nothing would process it
    assert body["headers"]["List-Unsubscribe"] == f"<{msg.unsubscribe_url}>"
    assert "mailto:" not in json.dumps(body)
    token = msg.unsubscribe_url.removeprefix("https://shop.example/u/")
    claim = read_unsubscribe_token(UNSUBSCRIBE_SIGNER, token)
    assert claim is not None and (claim.tenant_id, claim.lead_id) == (msg.tenant_id, msg.lead_id)
    assert claim.channel is Channel.EMAIL and claim.matches("sam@example.com")
    assert str(msg.tenant_id) not in msg.unsubscribe_url  # nothing guessable in the link
    assert "sam@example.com" not in msg.unsubscribe_url
    text, html = (c["value"] for c in body["content"])
    for part in (text, html):
        assert f"https://chat.example.com/{msg.lead_id}" in part
        assert "1 Main St, Springfield, IL 62701" in part
    assert req["headers"]["User-Agent"].startswith("sendgrid/")


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (429, ProviderUnavailable),
        (500, ProviderAmbiguous),  # SendGrid documents nothing: it may have queued the mail
        (503, ProviderUnavailable),  # RFC 9110: the server did not handle the request
        (502, ProviderAmbiguous),
        (504, ProviderAmbiguous),
        (400, ProviderRejected),
        (413, ProviderRejected),
    ],
)
async def test_sendgrid_status_classes(
    providers: FakeProviders, executor: ThreadPoolExecutor, status: int, error: type[Exception]
) -> None:
    email, _ = real_senders(providers, executor)
    providers.sendgrid.configure({"scripted": [{"status": status, "retry_after": 3}]})
    with pytest.raises(error) as info:
        await email.send(email_message())
    if status == 429:
        assert isinstance(info.value, ProviderUnavailable)
        assert info.value.retry_after == pytest.approx(3.0)
    assert not providers.sendgrid.messages


async def test_sendgrid_wrong_key_pauses_rather_than_fails(
    executor: ThreadPoolExecutor,
) -> None:
    from aiohttp import web

    from fakes.sendgrid_server import create_app

    runner = web.AppRunner(create_app(api_key="SG.right"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        sender = SendGridSender(
            api_key="SG.wrong", base_url=f"http://127.0.0.1:{port}", timeout=2, executor=executor
        )
        with pytest.raises(ProviderUnavailable, match="sendgrid_401"):
            await sender.send(email_message())
    finally:
        await runner.cleanup()


async def test_sendgrid_timeout_after_processing_is_ambiguous_and_found_by_activity(
    providers: FakeProviders, executor: ThreadPoolExecutor
) -> None:
    email, _ = real_senders(providers, executor, timeout=0.3)
    providers.sendgrid.configure({"scripted": [{"status": None, "delay": 1.0}]})
    msg = email_message()
    with pytest.raises(ProviderAmbiguous):
        await email.send(msg)
    found = await email.lookup(Probe.of(msg), since=OPEN_NOW)
    assert isinstance(found, Found)
    assert found.provider_message_id.startswith(providers.sendgrid.messages[0]["id"])
    other = Probe(uuid.uuid4(), msg.to, msg.chat_link)
    assert isinstance(await email.lookup(other, since=OPEN_NOW), NotFound)


async def test_sendgrid_without_query_api_cannot_verify(
    providers: FakeProviders, executor: ThreadPoolExecutor
) -> None:
    email, _ = real_senders(providers, executor, reconcile="none")
    result = await email.lookup(Probe.of(email_message()), since=OPEN_NOW)
    assert isinstance(result, Unverifiable) and not result.retry_later


async def test_sendgrid_connection_refused_is_safe_to_retry(executor: ThreadPoolExecutor) -> None:
    sender = SendGridSender(
        api_key="SG.k", base_url=closed_port(), timeout=1, executor=executor, reconcile="none"
    )
    with pytest.raises(ProviderUnavailable, match="connection failed"):
        await sender.send(email_message())


# Twilio -----------------------------------------------------------------------------------------
async def test_twilio_payload(providers: FakeProviders, executor: ThreadPoolExecutor) -> None:
    _, sms = real_senders(providers, executor)
    try:
        msg = sms_message()
        sid = await sms.send(msg)
    finally:
        await sms.close()
    [req] = providers.twilio.requests
    assert req["path"] == f"/2010-04-01/Accounts/AC{'0' * 32}/Messages.json"
    assert req["status"] == 201 and req["message_id"] == sid and sid.startswith("SM")
    form = req["payload"]
    assert form["To"] == "+12025550123" and form["From"] == "+12025550199"
    assert "MessagingServiceSid" not in form
    assert form["StatusCallback"] == "http://localhost:3000/webhooks/twilio/status"
    assert form["ValidityPeriod"] == "900"
    assert f"https://chat.example.com/{msg.lead_id}" in form["Body"]
    assert "STOP" in form["Body"]


async def test_twilio_messaging_service(
    providers: FakeProviders, executor: ThreadPoolExecutor
) -> None:
    _, sms = real_senders(providers, executor, messaging_service="MG" + "1" * 32)
    try:
        await sms.send(sms_message())
    finally:
        await sms.close()
    form = providers.twilio.requests[0]["payload"]
    assert form["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in form


@pytest.mark.parametrize(
    ("fault", "error", "created"),
    [
        ({"status": 429, "retry_after": 2}, ProviderUnavailable, 0),
        ({"status": 500}, ProviderAmbiguous, 0),
        ({"status": 500, "processed": True}, ProviderAmbiguous, 1),
        ({"status": 503}, ProviderAmbiguous, 0),
    ],
)
async def test_twilio_fault_classes(
    providers: FakeProviders,
    executor: ThreadPoolExecutor,
    fault: dict[str, object],
    error: type[Exception],
    created: int,
) -> None:
    _, sms = real_senders(providers, executor)
    providers.twilio.configure({"scripted": [fault]})
    msg = sms_message()
    try:
        with pytest.raises(error) as info:
            await sms.send(msg)
        if isinstance(info.value, ProviderUnavailable):
            assert info.value.retry_after == pytest.approx(2.0)
        since = datetime.now(UTC) - timedelta(minutes=5)
        lookup = await sms.lookup(Probe.of(msg), since=since)
    finally:
        await sms.close()
    assert len(providers.twilio.messages) == created
    assert isinstance(lookup, Found if created else NotFound)


@pytest.mark.parametrize(
    ("phone", "reason", "suppress"),
    [
        ("+13125550143", "twilio_21610_opted_out", True),
        ("+1555", "twilio_21211_invalid_number", False),
    ],
)
async def test_twilio_permanent_rejections(
    providers: FakeProviders, executor: ThreadPoolExecutor, phone: str, reason: str, suppress: bool
) -> None:
    from fakes.twilio_server import OPTOUTS

    providers.twilio_app[OPTOUTS].add("+13125550143")
    _, sms = real_senders(providers, executor)
    msg = sms_message()
    bad = dataclasses.replace(msg, to=phone, approved_to=phone, validity_seconds=60)
    try:
        with pytest.raises(ProviderRejected) as info:
            await sms.send(bad)
    finally:
        await sms.close()
    assert info.value.reason == reason and info.value.suppress is suppress


async def test_twilio_wrong_credentials_and_refused_connection_are_retryable(
    providers: FakeProviders,
) -> None:
    from aiohttp import web

    from fakes.twilio_server import create_app

    runner = web.AppRunner(create_app(account_sid="AC" + "1" * 32, auth_token="right"))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    for base in (f"http://127.0.0.1:{port}", closed_port()):
        sms = TwilioSender(
            account_sid="AC" + "1" * 32,
            auth_token="wrong",
            base_url=base,
            from_number="+12025550199",
            messaging_service_sid=None,
            status_callback=None,
            timeout=1,
        )
        try:
            with pytest.raises(ProviderUnavailable):
                await sms.send(sms_message())
        finally:
            await sms.close()
    await runner.cleanup()


async def test_twilio_read_timeout_is_ambiguous(
    providers: FakeProviders, executor: ThreadPoolExecutor
) -> None:
    # the timeout must cover the loopback connect even on a loaded machine (0.3 s did not:
    # a connect timeout is rightly "unavailable"); the answer comes well after it
    _, sms = real_senders(providers, executor, timeout=1.5)
    providers.twilio.configure({"scripted": [{"status": None, "delay": 4.0}]})
    try:
        with pytest.raises(ProviderAmbiguous):
            await sms.send(sms_message())
    finally:
        await sms.close()
    assert len(providers.twilio.messages) == 1  # it was processed: reconcile, do not resend


async def test_twilio_list_filters_by_to_and_date_sent(providers: FakeProviders) -> None:
    """The fake answers the official client's `DateSent>` / `To` filters like Twilio."""
    http = RoutedAsyncHttpClient(base_url=providers.twilio_url, connect_timeout=1, read_timeout=2)
    client = Client("AC" + "0" * 32, "t", http_client=http, environment={"X": ""})
    try:
        for to in ("+12025550101", "+12025550102", "+12025550101"):
            await client.messages.create_async(to=to, from_="+12025550199", body="hi")
        today = await client.messages.list_async(
            to="+12025550101", date_sent_after=datetime.now(UTC) - timedelta(hours=1)
        )
        tomorrow = await client.messages.list_async(
            to="+12025550101", date_sent_after=datetime.now(UTC) + timedelta(days=1)
        )
    finally:
        await http.close()
    assert len(today) == 2 and all(m.to == "+12025550101" for m in today)
    assert tomorrow == []
    assert "DateSent>" in providers.twilio.requests[-1]["query"]


def test_region_and_edge_in_the_environment_cannot_redirect_our_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")
    sms = TwilioSender(
        account_sid="AC" + "0" * 32,
        auth_token="t",
        base_url="http://127.0.0.1:9",
        from_number="+12025550199",
        messaging_service_sid=None,
        status_callback=None,
        timeout=1,
    )
    assert sms._client.get_hostname("https://api.twilio.com/x") == "https://api.twilio.com/x"


@pytest.mark.parametrize("approved", [None, "+12025550176"])
async def test_twilio_sends_only_to_the_number_the_gate_approved(
    providers: FakeProviders, executor: ThreadPoolExecutor, approved: str | None
) -> None:
    _, sms = real_senders(providers, executor)
    msg = dataclasses.replace(sms_message(), approved_to=approved)
    try:
        with pytest.raises(ProviderRejected) as info:
            await sms.send(msg)
    finally:
        await sms.close()
    assert info.value.reason == "recipient_not_approved" and not info.value.suppress
    assert providers.twilio.requests == []  # nothing left the process


async def test_twilio_error_texts_are_masked_before_anyone_sees_them(
    providers: FakeProviders, executor: ThreadPoolExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    """Twilio's refusal quotes the recipient's number; the reason we store (ledger), publish
    (outcome) and log is the one the sender raises: masked like every contact."""
    _, sms = real_senders(providers, executor)
    providers.twilio.configure({"scripted": [{"status": 400, "code": 21408}]})
    msg = sms_message("+12025550123")
    try:
        with pytest.raises(ProviderRejected) as info:
            await sms.send(msg)
    finally:
        await sms.close()
    reason = info.value.reason
    assert reason.startswith("twilio_21408: ") and "Permission to send an SMS" in reason
    assert "***23" in reason
    assert "2025550123" not in reason and "2025550123" not in caplog.text
    [request] = providers.twilio.requests  # the fake did quote it
    assert request["payload"]["To"] == "+12025550123"
