"""The signal routes over HTTP with fake ports: what is refused, written, emitted, answered."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from schemas.base import Channel
from schemas.events import SignalKind
from services.common.domain.signed_links import (
    OPERATOR_SESSION,
    UNSUBSCRIBE,
    Signer,
    unsubscribe_token,
)
from services.ingest.adapters.sendgrid_webhook import SendGridVerifier
from services.ingest.bootstrap import SignalParts
from services.ingest.domain.model import TouchRow
from services.ingest.entrypoints.answers import SIGNALS
from services.ingest.entrypoints.http import add_signal_routes
from services.ingest.service_layer.contact_signals import SignalService
from tests.support.deployment_secrets import LINK_SIGNING_KEY, UNSUBSCRIBE_SIGNER
from tests.support.provider_signing import SendGridSigner, sendgrid_body, twilio_signature
from tests.unit.ingest.support import FakeTenants
from tests.unit.ingest.support_signals import FakeLeads, FakePublisher, FakeStore, Touch

TOKEN = "auth-token-xyz"
PUBLIC = "https://hooks.example.com"
PHONE = "+12025550130"
LINK_KEY = LINK_SIGNING_KEY.encode()


@dataclass
class World:
    client: TestClient[web.Request, web.Application]
    store: FakeStore
    publisher: FakePublisher
    leads: FakeLeads
    signer: SendGridSigner

    async def twilio(self, path: str, params: dict[str, str], *, sign: bool = True):  # type: ignore[no-untyped-def]
        headers = {}
        if sign:
            headers["X-Twilio-Signature"] = twilio_signature(TOKEN, PUBLIC + path, params)
        return await self.client.post(path, data=params, headers=headers)


@pytest.fixture
async def world() -> AsyncIterator[World]:
    store, leads, signer = FakeStore(), FakeLeads(), SendGridSigner.generate()
    publisher = FakePublisher(log=store.log)
    parts = SignalParts(
        service=SignalService(store=store, publisher=publisher, help_text="Help: call us"),
        leads=leads,
        sendgrid=SendGridVerifier(signer.public_key, tolerance_seconds=300),
        twilio_auth_token=TOKEN,
        twilio_public_url=PUBLIC,
        links=UNSUBSCRIBE_SIGNER,
        tenants=FakeTenants(),
    )
    app = web.Application()
    app[SIGNALS] = parts
    add_signal_routes(app)
    async with TestClient(TestServer(app)) as client:
        yield World(client, store, publisher, leads, signer)


def sg_event(event: str, tenant: uuid.UUID, lead: uuid.UUID, command: uuid.UUID, **kw: object):  # type: ignore[no-untyped-def]
    return {
        "email": "sam@example.com",
        "event": event,
        "timestamp": int(time.time()),
        "sg_event_id": uuid.uuid4().hex,
        "tenant_id": str(tenant),
        "lead_id": str(lead),
        "command_id": str(command),
        **kw,
    }


async def test_signed_sendgrid_bounce_suppresses_then_emits_once(world: World) -> None:
    tenant, lead, command = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    world.store.touches.append(Touch(TouchRow(tenant, lead, command, Channel.EMAIL, "x")))
    body = sendgrid_body([sg_event("bounce", tenant, lead, command, type="bounce")])
    for _ in range(2):  # SendGrid retries: the second delivery changes nothing
        resp = await world.client.post(
            "/webhooks/sendgrid/events", data=body, headers=world.signer.headers(body)
        )
        assert resp.status == 200
    assert world.store.suppressions == {("email", "sam@example.com"): "bounce"}
    assert [s.kind for s in world.publisher.published] == [SignalKind.BOUNCED]
    assert world.store.log.index("suppress email sam@example.com") < world.store.log.index(
        "publish 1"
    )
    assert world.store.touches[0].delivery_status == "bounced"


async def test_forged_altered_stale_sendgrid_requests_change_nothing(world: World) -> None:
    tenant, lead, command = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    body = sendgrid_body([sg_event("unsubscribe", tenant, lead, command)])
    forged = SendGridSigner.generate().headers(body)
    altered = world.signer.headers(body)
    stale = world.signer.headers(body, at=time.time() - 3600)
    cases = [
        (body, forged),
        (body.replace(b"unsubscribe", b"delivered"), altered),
        (body, stale),
        (body, {"Content-Type": "application/json"}),
    ]
    for data, headers in cases:
        resp = await world.client.post("/webhooks/sendgrid/events", data=data, headers=headers)
        assert resp.status == 401, await resp.text()
    assert world.store.suppressions == {} and world.store.log == []
    assert world.publisher.published == []


async def test_kafka_down_answers_503_but_keeps_the_suppression(world: World) -> None:
    tenant, lead, command = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    world.publisher.fail = True
    body = sendgrid_body([sg_event("spamreport", tenant, lead, command)])
    resp = await world.client.post(
        "/webhooks/sendgrid/events", data=body, headers=world.signer.headers(body)
    )
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert ("email", "sam@example.com") in world.store.suppressions
    # the suppression's claim stays; the signal's was rolled back: the retry will emit it
    assert {provider for provider, _ in world.store.claimed} == {"sendgrid_suppress"}
    world.publisher.fail = False
    resp = await world.client.post(
        "/webhooks/sendgrid/events", data=body, headers=world.signer.headers(body)
    )
    assert resp.status == 200
    assert [s.kind for s in world.publisher.published] == [SignalKind.SPAM_REPORT]


async def test_inbound_stop_suppresses_before_answering_and_opts_out_every_lead(
    world: World,
) -> None:
    t1, l1, t2, l2 = (uuid.uuid4() for _ in range(4))
    world.store.contacts[PHONE] = [(t1, l1), (t2, l2)]
    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": "(202) 555-0130", "Body": " stop "}
    resp = await world.twilio("/webhooks/twilio/inbound", params)
    assert resp.status == 200
    assert resp.content_type == "application/xml"
    assert "<Message>" not in await resp.text()
    assert world.store.suppressions == {("sms", PHONE): "sms_stop"}
    kinds = {(s.tenant_id, s.lead_id, s.kind) for s in world.publisher.published}
    assert kinds == {(t1, l1, SignalKind.OPTED_OUT), (t2, l2, SignalKind.OPTED_OUT)}
    assert world.store.log[0] == f"suppress sms {PHONE}"
    # Twilio retries the same message: nothing new
    assert (await world.twilio("/webhooks/twilio/inbound", params)).status == 200
    assert len(world.publisher.published) == 2


async def test_start_removes_the_suppression_and_help_answers_help(world: World) -> None:
    world.store.suppressions[("sms", PHONE)] = "sms_stop"
    world.store.contacts[PHONE] = [(uuid.uuid4(), uuid.uuid4())]
    resp = await world.twilio(
        "/webhooks/twilio/inbound", {"MessageSid": "SM1", "From": PHONE, "Body": "START"}
    )
    assert resp.status == 200 and world.store.suppressions == {}
    assert [s.kind for s in world.publisher.published] == [SignalKind.OPTED_IN]
    resp = await world.twilio(
        "/webhooks/twilio/inbound", {"MessageSid": "SM2", "From": PHONE, "Body": "HELP"}
    )
    assert "<Message>Help: call us</Message>" in await resp.text()
    resp = await world.twilio(
        "/webhooks/twilio/inbound", {"MessageSid": "SM3", "From": PHONE, "Body": "Tuesday ok?"}
    )
    assert [s.kind for s in world.publisher.published][-1] is SignalKind.REPLIED


async def test_forged_and_altered_twilio_requests_change_nothing(world: World) -> None:
    world.store.contacts[PHONE] = [(uuid.uuid4(), uuid.uuid4())]
    params = {"MessageSid": "SM9", "From": PHONE, "Body": "STOP"}
    sig = twilio_signature(TOKEN, PUBLIC + "/webhooks/twilio/inbound", params)
    forged = twilio_signature("not-the-token", PUBLIC + "/webhooks/twilio/inbound", params)
    for data, headers in [
        (params, {"X-Twilio-Signature": forged}),
        ({**params, "From": "+12025550187"}, {"X-Twilio-Signature": sig}),
        (params, {}),
    ]:
        resp = await world.client.post("/webhooks/twilio/inbound", data=data, headers=headers)
        assert resp.status == 401
    assert world.store.suppressions == {} and world.store.log == []
    assert world.publisher.published == []


async def test_status_callback_updates_the_touch_and_signals_delivery(world: World) -> None:
    tenant, lead, command = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    touch = Touch(TouchRow(tenant, lead, command, Channel.SMS, PHONE), provider_message_id="SMa")
    world.store.touches.append(touch)
    params = {"MessageSid": "SMa", "MessageStatus": "delivered", "To": PHONE}
    assert (await world.twilio("/webhooks/twilio/status", params)).status == 200
    late = {"MessageSid": "SMa", "MessageStatus": "sent", "To": PHONE}
    assert (await world.twilio("/webhooks/twilio/status", late)).status == 200
    assert touch.delivery_status == "delivered"  # a late "sent" does not go backwards
    assert [(s.kind, s.command_id) for s in world.publisher.published] == [
        (SignalKind.DELIVERED, command)
    ]
    bad = {"MessageSid": "SMa", "MessageStatus": "failed", "To": PHONE}
    resp = await world.twilio("/webhooks/twilio/status", bad, sign=False)
    assert resp.status == 401 and touch.delivery_status == "delivered"


async def test_lead_api_is_tenant_scoped(world: World) -> None:
    tenant, other, lead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    world.leads.tokens = {"tok-a": tenant, "tok-b": other}
    world.leads.views[(tenant, lead)] = json.dumps({"leadId": str(lead)})
    ok = await world.client.get(f"/api/leads/{lead}", headers={"Authorization": "Bearer tok-a"})
    assert ok.status == 200 and (await ok.json())["leadId"] == str(lead)
    theirs = await world.client.get(f"/api/leads/{lead}", headers={"Authorization": "Bearer tok-b"})
    assert theirs.status == 404
    missing = await world.client.get(
        f"/api/leads/{uuid.uuid4()}", headers={"Authorization": "Bearer tok-a"}
    )
    assert missing.status == 404 and await missing.json() == await theirs.json()
    assert (await world.client.get(f"/api/leads/{lead}")).status == 401
    bad = await world.client.get(f"/api/leads/{lead}", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401
    assert (
        await world.client.get("/api/leads/not-a-uuid", headers={"Authorization": "Bearer tok-a"})
    ).status == 404


async def test_chat_signals(world: World) -> None:
    tenant, other, lead = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    world.leads.tokens = {"tok-a": tenant, "tok-b": other}
    world.leads.views[(tenant, lead)] = "{}"
    auth = {"Authorization": "Bearer tok-a"}
    path = f"/api/leads/{lead}/signals"
    resp = await world.client.post(
        path, json={"kind": "chat_opened", "eventId": "e1"}, headers=auth
    )
    assert resp.status == 202
    (signal,) = world.publisher.published
    assert (signal.kind, signal.tenant_id, signal.lead_id) == (SignalKind.CHAT_OPENED, tenant, lead)
    again = await world.client.post(
        path, json={"kind": "chat_opened", "eventId": "e1"}, headers=auth
    )
    assert (await again.json())["signalId"] == signal.signal_id  # same event id, same signal id
    for body in ({"kind": "opted_out"}, {"kind": "nope"}, {}):
        assert (await world.client.post(path, json=body, headers=auth)).status == 400
    other_auth = {"Authorization": "Bearer tok-b"}
    resp = await world.client.post(path, json={"kind": "lost"}, headers=other_auth)
    assert resp.status == 404
    assert len(world.publisher.published) == 2


def unsubscribe_path(
    tenant: uuid.UUID,
    lead: uuid.UUID,
    contact: str = "sam@example.com",
    signer: Signer = UNSUBSCRIBE_SIGNER,
) -> str:
    token = unsubscribe_token(
        signer, tenant_id=tenant, lead_id=lead, channel=Channel.EMAIL, contact=contact
    )
    return f"/u/{token}"


async def test_signed_unsubscribe_link_asks_then_unsubscribes_the_address_it_was_sent_to(
    world: World,
) -> None:
    tenant, lead = uuid.uuid4(), uuid.uuid4()
    world.store.contacts["sam@example.com"] = [(tenant, lead)]
    world.store.contacts["old@example.com"] = [(tenant, lead)]  # the lead's earlier address
    path = unsubscribe_path(tenant, lead)
    page = await world.client.get(path)
    assert page.status == 200 and '<form method="post">' in await page.text()
    assert "this location" in await page.text()
    assert world.store.log == []  # GET (a link scanner) changes nothing
    resp = await world.client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert resp.status == 200 and "You are unsubscribed" in await resp.text()
    assert world.store.suppressions == {("email", "sam@example.com"): "list_unsubscribe"}
    assert world.store.scopes == {("email", "sam@example.com"): tenant}  # its company's
    (signal,) = world.publisher.published
    assert (signal.kind, signal.lead_id, signal.tenant_id, signal.contact) == (
        SignalKind.UNSUBSCRIBED,
        lead,
        tenant,
        "sam@example.com",
    )
    # a link sent to the earlier address unsubscribes that address, never another
    assert (
        await world.client.post(unsubscribe_path(tenant, lead, "old@example.com"))
    ).status == 200
    assert ("email", "old@example.com") in world.store.suppressions


async def test_missing_altered_foreign_or_old_links_change_nothing_and_say_so(world: World) -> None:
    tenant, lead = uuid.uuid4(), uuid.uuid4()
    world.store.contacts["sam@example.com"] = [(tenant, lead)]
    good = unsubscribe_path(tenant, lead)
    token = good.removeprefix("/u/")
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    foreign = unsubscribe_path(tenant, lead, signer=Signer([b"k" * 40], UNSUBSCRIBE))
    other_purpose = unsubscribe_path(tenant, lead, signer=Signer([LINK_KEY], OPERATOR_SESSION))
    for path in (
        f"/u/{flipped}",
        f"/u/{token[:-2]}",
        foreign,
        other_purpose,
        "/u/",
        "/u/%00%ff",
        "/u/" + "A" * 5000,
    ):
        for method in ("GET", "POST"):
            resp = await world.client.request(method, path)
            assert resp.status == 400, (method, path)
            assert "Nothing was changed" in await resp.text()
    for method in ("GET", "POST"):  # the old unsigned form: gone
        old = await world.client.request(method, f"/unsubscribe/{tenant}/{lead}")
        assert old.status == 410 and "Nothing was changed" in await old.text()
    # a valid link for an address the lead never had: nothing to unsubscribe
    stranger = await world.client.post(unsubscribe_path(tenant, lead, "eve@example.com"))
    assert stranger.status == 404 and "Nothing was changed" in await stranger.text()
    assert world.store.log == [] and world.publisher.published == []


def signal_app(store: FakeStore, **parts: Any) -> web.Application:
    """The signal routes on `store`, without provider keys (`parts`: other SignalParts)."""
    app = web.Application()
    app[SIGNALS] = SignalParts(
        **{
            "service": SignalService(store=store, publisher=FakePublisher(), help_text="h"),
            "leads": FakeLeads(),
            "sendgrid": None,
            "twilio_auth_token": None,
            "twilio_public_url": None,
            "links": UNSUBSCRIBE_SIGNER,
            "tenants": FakeTenants(),
            **parts,
        }
    )
    add_signal_routes(app)
    return app


async def test_links_signed_with_a_retired_key_still_work_while_it_is_listed() -> None:
    store = FakeStore()
    tenant, lead = uuid.uuid4(), uuid.uuid4()
    store.contacts["sam@example.com"] = [(tenant, lead)]
    rotated = Signer([b"n" * 40, LINK_KEY], UNSUBSCRIBE)
    app = signal_app(store, links=rotated, unsubscribe_brand_wide=True)
    async with TestClient(TestServer(app)) as client:
        page = await client.get(unsubscribe_path(tenant, lead))  # signed with the old key
        assert page.status == 200 and "every one of our locations" in await page.text()
        assert (await client.post(unsubscribe_path(tenant, lead))).status == 200
    assert store.scopes == {("email", "sam@example.com"): None}  # UNSUBSCRIBE_SCOPE=brand


async def test_the_page_names_the_location_and_its_companys_other_locations() -> None:
    from fakes.shopmonkey.data import World as SimWorld
    from tests.unit.ingest.support import company_of

    sim = SimWorld(seed=3, layout=(3,))
    company = company_of(sim.companies[0])
    tenant, lead = company.tenants[0].id, uuid.uuid4()
    store = FakeStore(contacts={"sam@example.com": [(tenant, lead)]})
    app = signal_app(store, tenants=FakeTenants(company))
    async with TestClient(TestServer(app)) as client:
        text = await (await client.post(unsubscribe_path(tenant, lead))).text()
    assert company.tenants[0].name in text
    assert f"the 2 other locations of <strong>{company.name}</strong>" in text


async def test_without_keys_every_webhook_is_refused() -> None:
    store, publisher = FakeStore(), FakePublisher()
    app = signal_app(store, service=SignalService(store=store, publisher=publisher, help_text="h"))
    signer = SendGridSigner.generate()
    body = sendgrid_body([{"event": "bounce", "email": "a@b.co", "sg_event_id": "1"}])
    params = {"MessageSid": "SM1", "From": PHONE, "Body": "STOP"}
    async with TestClient(TestServer(app)) as client:
        resp = await client.post(
            "/webhooks/sendgrid/events", data=body, headers=signer.headers(body)
        )
        assert resp.status == 401
        for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status"):
            sig = twilio_signature("", f"http://127.0.0.1{path}", params)
            resp = await client.post(path, data=params, headers={"X-Twilio-Signature": sig})
            assert resp.status == 401
    assert store.log == [] and publisher.published == []


async def test_database_down_answers_503_and_emits_nothing(world: World) -> None:
    from sqlalchemy.exc import OperationalError

    async def broken(**_: object) -> bool:
        raise OperationalError("INSERT", {}, Exception("connection refused"))

    world.store.suppress = broken  # type: ignore[method-assign]
    world.store.contacts[PHONE] = [(uuid.uuid4(), uuid.uuid4())]
    params = {"MessageSid": "SMdb", "From": PHONE, "Body": "STOP"}
    resp = await world.twilio("/webhooks/twilio/inbound", params)
    assert resp.status == 503 and resp.headers["Retry-After"]
    assert world.publisher.published == []


async def test_a_callback_racing_outbound_finds_the_touch_a_moment_later() -> None:
    import asyncio

    store, publisher = FakeStore(), FakePublisher()
    service = SignalService(
        store=store, publisher=publisher, help_text="h", unmatched_wait=(0.05, 0.2)
    )
    tenant, lead, command = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    touch = Touch(TouchRow(tenant, lead, command, Channel.SMS, PHONE), provider_message_id="SMr")

    async def outbound_records_the_sid() -> None:
        await asyncio.sleep(0.1)
        store.touches.append(touch)

    recorder = asyncio.create_task(outbound_records_the_sid())
    result = await service.twilio_status(
        message_sid="SMr", message_status="delivered", error_code=None, to=PHONE
    )
    await recorder
    assert result is not None and result.matched
    assert touch.delivery_status == "delivered"
    assert [s.command_id for s in publisher.published] == [command]
    unknown = await service.twilio_status(
        message_sid="SMx", message_status="delivered", error_code=None, to=PHONE
    )
    assert unknown is not None and not unknown.matched and len(publisher.published) == 1


async def test_an_older_start_than_the_recorded_stop_changes_nothing() -> None:
    """Two ingest processes, their clocks a little apart: the START one received (by its clock)
    before the STOP another recorded neither lifts that STOP nor says opted-in."""
    from datetime import UTC, datetime, timedelta

    store, publisher = FakeStore(), FakePublisher()
    lead = (uuid.uuid4(), uuid.uuid4())
    store.contacts[PHONE] = [lead]
    now = [datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
    service = SignalService(store=store, publisher=publisher, help_text="", clock=lambda: now[0])
    await service.twilio_inbound(message_sid="SM-stop", sender=PHONE, body="STOP")
    now[0] -= timedelta(seconds=2)
    result = await service.twilio_inbound(message_sid="SM-start", sender=PHONE, body="START")
    assert store.suppressions == {("sms", PHONE): "sms_stop"}
    assert result.signals == 0
    assert [s.kind for s in publisher.published] == [SignalKind.OPTED_OUT]
