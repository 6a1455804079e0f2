"""Rendering: the default templates, the chat link and CAN-SPAM footer always present."""

from __future__ import annotations

from datetime import time

import jinja2
import pytest

from schemas.base import Channel
from schemas.events import Recipient
from services.outbound.adapters.templates import JinjaRenderer, hours_lines
from services.outbound.domain.model import EmailMessage, SmsMessage
from services.outbound.errors import TemplateError
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER
from tests.unit.outbound.support import OPEN_NOW, command, renderer, tenant_profile

EMAIL_TEMPLATES = [
    "estimate_followup",
    "estimate_checkin",
    "estimate_last_chance",
    "nurture_email_welcome",
    "nurture_email_reminder",
    "nurture_email_last_chance",
]
SMS_TEMPLATES = [
    "estimate_reminder",
    "estimate_checkin",
    "nurture_sms_followup",
    "nurture_sms_checkin",
]


def test_every_template_of_the_sequencers_default_plan_exists() -> None:
    """The contract with the sequencer: its default plan names only templates we can render."""
    from services.sequencer.domain.plan import DEFAULT_PLAN

    for step in DEFAULT_PLAN.steps:
        names = EMAIL_TEMPLATES if step.channel is Channel.EMAIL else SMS_TEMPLATES
        assert step.template in names, step


@pytest.mark.parametrize("name", EMAIL_TEMPLATES)
def test_default_email_templates(name: str) -> None:
    cmd = command(template=name, context={"vehicle": "2019 Honda Civic", "services": ["Tint"]})
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage)
    chat = f"https://chat.example.com/{cmd.lead_id}"
    assert msg.chat_link == chat
    for part in (msg.text, msg.html):
        assert chat in part
        assert "1 Main St, Springfield, IL 62701" in part
        assert msg.unsubscribe_url in part
        assert "Tint World Springfield" in part
    assert "Hi Sam" in msg.text
    assert msg.subject and "\n" not in msg.subject
    assert "Mon 8:00 AM–6:00 PM" in msg.text and "Sun closed" in msg.text


@pytest.mark.parametrize("name", SMS_TEMPLATES)
def test_default_sms_templates(name: str) -> None:
    cmd = command(channel=Channel.SMS, template=name, phone="(202) 555-0123")
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=600)
    assert isinstance(msg, SmsMessage)
    assert f"https://chat.example.com/{cmd.lead_id}" in msg.body
    assert msg.to == "+12025550123" and msg.validity_seconds == 600
    assert len(msg.body) <= 320 and "STOP" in msg.body


def test_missing_optional_data_still_renders() -> None:
    cmd = command(context={}).model_copy(update={"recipient": Recipient(email="sam@example.com")})
    msg = renderer().render(cmd, tenant_profile(hours={}), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage)
    assert "Hi there" in msg.text and "Hours:" not in msg.text


def test_customer_data_is_escaped_in_html() -> None:
    cmd = command(context={"vehicle": "<script>alert(1)</script>"})
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage)
    assert "<script>" not in msg.html and "&lt;script&gt;" in msg.html


@pytest.mark.parametrize("name", ["no_such_template", "../../etc/passwd", "_layout", "A B"])
def test_unknown_or_unsafe_template_names_fail(name: str) -> None:
    with pytest.raises(TemplateError, match="unknown_template"):
        renderer().render(
            command(template=name), tenant_profile(), now=OPEN_NOW, validity_seconds=1
        )


def test_chat_link_and_address_are_added_when_a_template_forgets_them() -> None:
    loader = jinja2.DictLoader(
        {
            "email/bare.subject.j2": "Hello",
            "email/bare.txt.j2": "Just text.",
            "email/bare.html.j2": "<p>Just html.</p>",
            "sms/bare.txt.j2": "Just an SMS.",
        }
    )
    r = JinjaRenderer(
        chat_base_url="https://chat.example.com/",
        from_email="noreply@shop.example",
        from_name="Shop",
        unsubscribe_base_url="https://u.example",
        unsubscribe_signer=UNSUBSCRIBE_SIGNER,
        loader=loader,
    )
    cmd = command(template="bare")
    email = r.render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=1)
    assert isinstance(email, EmailMessage)
    chat = f"https://chat.example.com/{cmd.lead_id}"
    assert chat in email.text and chat in email.html
    assert "1 Main St" in email.text and "1 Main St" in email.html
    sms = r.render(
        command(channel=Channel.SMS, template="bare"),
        tenant_profile(),
        now=OPEN_NOW,
        validity_seconds=1,
    )
    assert isinstance(sms, SmsMessage) and sms.body.endswith(sms.chat_link)


def test_too_long_sms_fails() -> None:
    loader = jinja2.DictLoader({"sms/long.txt.j2": "x" * 1700})
    r = JinjaRenderer(
        chat_base_url="https://c.example",
        from_email="a@b.c",
        from_name=None,
        unsubscribe_base_url="https://u.example",
        unsubscribe_signer=UNSUBSCRIBE_SIGNER,
        loader=loader,
    )
    with pytest.raises(TemplateError, match="sms_too_long"):
        r.render(
            command(channel=Channel.SMS, template="long"),
            tenant_profile(),
            now=OPEN_NOW,
            validity_seconds=1,
        )


def test_hours_lines() -> None:
    assert hours_lines({}) == []
    lines = hours_lines({0: (time(9, 30), time(17))})
    assert lines[0] == "Mon 9:30 AM–5:00 PM" and lines[6] == "Sun closed"


def test_any_failure_while_rendering_is_a_template_error() -> None:
    """A filter or an expression that raises (not a jinja2 error) is the template's fault too:
    a TemplateError, so the command is recorded failed and dead-lettered, never a crash."""
    loader = jinja2.DictLoader({"sms/broken.txt.j2": "{{ (lead.first_name | length) / 0 }}"})
    broken = renderer(loader=loader)
    with pytest.raises(TemplateError, match="ZeroDivisionError"):
        broken.render(
            command(channel=Channel.SMS, template="broken"),
            tenant_profile(),
            now=OPEN_NOW,
            validity_seconds=600,
        )


def _campaign_templates() -> list[tuple[Channel, str]]:
    """Every (channel, template) the sequencer's default campaign plans may emit: a step on
    the preferred channel may go either way."""
    from services.sequencer.domain.campaigns import DEFAULT_CAMPAIGNS, Campaign

    out = set()
    for campaign in Campaign:
        for step in DEFAULT_CAMPAIGNS.of(campaign).steps:
            channels = [step.channel] if step.channel else [Channel.EMAIL, Channel.SMS]
            out |= {(channel, step.template) for channel in channels}
    return sorted(out)


CAMPAIGN_CONTEXT = {
    "vehicle": "2019 Honda Civic",
    "campaign": "declined",
    "declined_services": ["Brake pads", "Cabin filter"],
    "declined_cents": 32_050,
    "appointment_at": "2026-03-12T14:30:00+00:00",
}


@pytest.mark.parametrize(("channel", "name"), _campaign_templates())
def test_every_campaign_template_renders_with_its_facts_and_the_legal_parts(
    channel: Channel, name: str
) -> None:
    cmd = command(channel=channel, template=name, campaign="declined", context=CAMPAIGN_CONTEXT)
    tenant = tenant_profile(review_url="https://g.page/r/tint-world/review")
    msg = renderer().render(cmd, tenant, now=OPEN_NOW, validity_seconds=60)
    chat = f"https://chat.example.com/{cmd.lead_id}"
    text = msg.text if isinstance(msg, EmailMessage) else msg.body
    assert chat in text
    if isinstance(msg, EmailMessage):
        assert "1 Main St, Springfield, IL 62701" in msg.html and msg.unsubscribe_url in msg.html
        assert "are a customer of Tint World Springfield" in msg.text
    else:
        assert "STOP" in msg.body and len(msg.body) <= 320
    if name.startswith("declined"):
        assert "Brake pads" in text
    if name.startswith("review"):
        assert "https://g.page/r/tint-world/review" in text
    if name.startswith("appointment") and isinstance(msg, EmailMessage):
        assert "Thu Mar 12 at 10:30 AM" in msg.text  # the location's time (New York)


def test_a_review_request_without_a_review_url_links_the_chat() -> None:
    cmd = command(template="review_request", campaign="review", context={"campaign": "review"})
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage)
    assert msg.text.count(f"https://chat.example.com/{cmd.lead_id}") >= 2


def test_campaign_facts_of_the_wrong_type_are_left_out_not_an_error() -> None:
    """A command's context is JSON from the sequencer: odd values render as nothing."""
    odd = {"declined_services": "Brakes", "declined_cents": True, "appointment_at": "soon"}
    cmd = command(template="declined_email_first", campaign="declined", context=odd)
    msg = renderer().render(cmd, tenant_profile(), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage) and "the work we recommended" in msg.text
