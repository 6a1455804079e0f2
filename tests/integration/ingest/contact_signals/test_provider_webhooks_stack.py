"""Provider webhooks through the real ingest app (create_app) on real Kafka and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import text

from schemas.base import Channel
from schemas.events import SignalKind
from services.common.domain.signed_links import unsubscribe_token
from tests.integration.ingest.contact_signals.conftest import (
    PUBLIC_URL,
    TWILIO_TOKEN,
    Stack,
    random_phone,
)
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER
from tests.support.provider_signing import SendGridSigner, sendgrid_body, twilio_signature

pytestmark = pytest.mark.integration


def sg(event: str, tenant: uuid.UUID, lead: uuid.UUID, command: uuid.UUID, email: str, **kw: Any):  # type: ignore[no-untyped-def]
    return {
        "email": email,
        "event": event,
        "timestamp": int(time.time()),
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "abc.filter0001",
        "tenant_id": str(tenant),
        "lead_id": str(lead),
        "command_id": str(command),
        **kw,
    }


async def post_twilio(stack: Stack, path: str, params: dict[str, str], token: str = TWILIO_TOKEN):  # type: ignore[no-untyped-def]
    signature = twilio_signature(token, PUBLIC_URL + path, params)
    return await stack.client.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def suppressed(stack: Stack, channel: str, contact: str) -> bool:
    return bool(
        await stack.scalar(
            "SELECT count(*) FROM suppressions WHERE channel = :c AND contact = :k",
            c=channel,
            k=contact,
        )
    )


async def test_sendgrid_bounce_and_delivery(stack: Stack, make_tenant: Any) -> None:
    tenant, _ = await make_tenant()
    email = f"sam.{uuid.uuid4().hex[:8]}@example.com"
    lead = await stack.add_lead(tenant.id, email=email)
    first = await stack.add_touch(tenant.id, lead, recipient=email)
    second = await stack.add_touch(tenant.id, lead, recipient=email, step_index=2)
    delivered = sg("delivered", tenant.id, lead, first, email)
    bounce = sg("bounce", tenant.id, lead, second, email.upper(), type="bounce")
    body = sendgrid_body([delivered, bounce, dict(delivered)])  # a duplicate in the batch

    resp = await stack.client.post(
        "/webhooks/sendgrid/events", data=body, headers=stack.signer.headers(body)
    )
    assert resp.status == 200, await resp.text()
    assert await suppressed(stack, "email", email)  # in PostgreSQL when the answer came
    status = "SELECT delivery_status FROM job_executions WHERE command_id = :c"
    assert await stack.scalar(status, c=first) == "delivered"
    assert await stack.scalar(status, c=second) == "bounced"

    # SendGrid retries the whole batch: harmless
    again = await stack.client.post(
        "/webhooks/sendgrid/events", data=body, headers=stack.signer.headers(body)
    )
    assert again.status == 200 and (await again.json())["new"] == 0

    records = stack.signals()
    assert sorted(s.kind for _, s in records) == [SignalKind.BOUNCED, SignalKind.DELIVERED]
    assert {k for k, _ in records} == {str(tenant.id)}
    bounced = next(s for _, s in records if s.kind is SignalKind.BOUNCED)
    assert (bounced.lead_id, bounced.command_id, bounced.contact) == (lead, second, email)


async def test_sendgrid_forged_altered_stale_emit_nothing(stack: Stack, make_tenant: Any) -> None:
    tenant, _ = await make_tenant()
    email = f"x.{uuid.uuid4().hex[:8]}@example.com"
    lead = await stack.add_lead(tenant.id, email=email)
    command = await stack.add_touch(tenant.id, lead, recipient=email)
    body = sendgrid_body([sg("spamreport", tenant.id, lead, command, email)])
    attempts = [
        (body, SendGridSigner.generate().headers(body)),
        (body.replace(b"spamreport", b"delivered"), stack.signer.headers(body)),
        (body, stack.signer.headers(body, at=time.time() - 7200)),
        (body, {"Content-Type": "application/json"}),
    ]
    for data, headers in attempts:
        resp = await stack.client.post("/webhooks/sendgrid/events", data=data, headers=headers)
        assert resp.status == 401
    assert not await suppressed(stack, "email", email)
    assert (
        await stack.scalar(
            "SELECT delivery_status FROM job_executions WHERE command_id = :c", c=command
        )
        is None
    )
    assert stack.signals() == []


async def test_sms_stop_start_help_and_reply(stack: Stack, make_tenant: Any) -> None:
    tenant, _ = await make_tenant()
    other, _ = await make_tenant()
    phone = random_phone()
    lead = await stack.add_lead(tenant.id, phone=phone)
    other_lead = await stack.add_lead(other.id)
    await stack.add_touch(other.id, other_lead, channel="sms", recipient=phone)
    local = phone[2:5] + "-" + phone[5:8] + "-" + phone[8:]  # as a customer may type it

    stop = {
        "MessageSid": "SM" + uuid.uuid4().hex,
        "From": local,
        "To": "+12025550100",
        "Body": " Stop ",
    }
    resp = await post_twilio(stack, "/webhooks/twilio/inbound", stop)
    assert resp.status == 200 and resp.content_type == "application/xml"
    # in PostgreSQL before the answer, for every location (the outbound gate reads it)
    assert (
        await stack.scalar(
            "SELECT count(*) FROM suppressions WHERE channel = 'sms' AND contact = :p "
            "AND tenant_id IS NULL",
            p=phone,
        )
        == 1
    )
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", stop)).status == 200  # retry

    records = stack.signals()
    assert {(k, s.lead_id, s.kind) for k, s in records} == {
        (str(tenant.id), lead, SignalKind.OPTED_OUT),
        (str(other.id), other_lead, SignalKind.OPTED_OUT),
    }
    assert len(records) == 2

    forged = {**stop, "MessageSid": "SMforged", "Body": "START"}
    resp = await post_twilio(stack, "/webhooks/twilio/inbound", forged, token="wrong")
    assert resp.status == 401
    assert await suppressed(stack, "sms", phone)

    start = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "Body": "START"}
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", start)).status == 200
    assert not await suppressed(stack, "sms", phone)

    help_ = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "Body": "help"}
    resp = await post_twilio(stack, "/webhooks/twilio/inbound", help_)
    assert stack.settings.sms_help_text.split(".")[0] in await resp.text()

    reply = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "Body": "Can I come Friday?"}
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", reply)).status == 200
    kinds = [s.kind for _, s in stack.signals() if s.lead_id == lead]
    assert kinds == [SignalKind.OPTED_OUT, SignalKind.OPTED_IN, SignalKind.REPLIED]


async def test_a_replayed_start_never_lifts_a_later_stop(stack: Stack, make_tenant: Any) -> None:
    """STOP, START, STOP; then someone replays the START's signed request (or Twilio delivers it
    again): its MessageSid is claimed before any suppression changes, so the number stays
    opted out, and no opted-in signal goes out for it."""
    tenant, _ = await make_tenant()
    phone = random_phone()
    lead = await stack.add_lead(tenant.id, phone=phone)
    # an outbound send earlier met Twilio's 21610: outbound's own suppression of this location
    async with stack.engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO suppressions (tenant_id, channel, contact, reason, source) "
                "VALUES (:t, 'sms', :p, 'opted_out', 'twilio')"
            ),
            {"t": tenant.id, "p": phone},
        )

    def sms(body: str) -> dict[str, str]:
        return {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "Body": body}

    first_stop, start, second_stop = sms("STOP"), sms("START"), sms("STOP")
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", first_stop)).status == 200
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", start)).status == 200
    assert not await suppressed(stack, "sms", phone)  # START lifted outbound's opt-out too
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", second_stop)).status == 200
    assert await suppressed(stack, "sms", phone)
    assert (await post_twilio(stack, "/webhooks/twilio/inbound", start)).status == 200  # replay
    assert await suppressed(stack, "sms", phone)
    kinds = [s.kind for _, s in stack.signals() if s.lead_id == lead]
    assert kinds == [SignalKind.OPTED_OUT, SignalKind.OPTED_IN, SignalKind.OPTED_OUT]


async def test_twilio_status_callback_marks_the_touch_delivered(
    stack: Stack, make_tenant: Any
) -> None:
    tenant, _ = await make_tenant()
    phone = random_phone()
    lead = await stack.add_lead(tenant.id, phone=phone)
    sid = "SM" + uuid.uuid4().hex
    command = await stack.add_touch(
        tenant.id, lead, channel="sms", recipient=phone, provider="twilio", provider_message_id=sid
    )
    path = "/webhooks/twilio/status"
    for status in ("sent", "delivered", "sent"):  # the late "sent" must not undo "delivered"
        params = {"MessageSid": sid, "MessageStatus": status, "To": phone, "From": "+12025550100"}
        assert (await post_twilio(stack, path, params)).status == 200
    row = "SELECT delivery_status FROM job_executions WHERE command_id = :c"
    assert await stack.scalar(row, c=command) == "delivered"

    tampered = {"MessageSid": sid, "MessageStatus": "failed", "To": phone, "ErrorCode": "30007"}
    sig = twilio_signature(TWILIO_TOKEN, PUBLIC_URL + path, {**tampered, "ErrorCode": "0"})
    resp = await stack.client.post(path, data=tampered, headers={"X-Twilio-Signature": sig})
    assert resp.status == 401
    assert await stack.scalar(row, c=command) == "delivered"

    records = stack.signals()
    assert [(k, s.kind, s.command_id, s.lead_id) for k, s in records] == [
        (str(tenant.id), SignalKind.DELIVERED, command, lead)
    ]


async def test_one_click_unsubscribe_suppresses_the_leads_email(
    stack: Stack, make_tenant: Any
) -> None:
    tenant, _ = await make_tenant()
    email = f"Una.{uuid.uuid4().hex[:8]}@Example.com"
    lead = await stack.add_lead(tenant.id, email=email)
    old = await stack.client.post(
        f"/unsubscribe/{tenant.id}/{lead}", data={"List-Unsubscribe": "One-Click"}
    )
    assert old.status == 410 and not await suppressed(stack, "email", email.lower())
    token = unsubscribe_token(
        UNSUBSCRIBE_SIGNER, tenant_id=tenant.id, lead_id=lead, channel=Channel.EMAIL, contact=email
    )
    resp = await stack.client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert resp.status == 200
    assert await suppressed(stack, "email", email.lower())
    where = await stack.scalar(
        "SELECT tenant_id FROM suppressions WHERE contact = :k", k=email.lower()
    )
    assert where == tenant.id  # UNSUBSCRIBE_SCOPE=company: at the location, for its company
    ((key, signal),) = stack.signals()
    assert (key, signal.kind, signal.lead_id) == (str(tenant.id), SignalKind.UNSUBSCRIBED, lead)
