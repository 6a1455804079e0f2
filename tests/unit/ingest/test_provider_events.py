"""Pure mapping: SendGrid events, Twilio keywords and statuses."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from schemas.events import SignalKind
from services.ingest.adapters.twilio_webhook import twiml
from services.ingest.domain.provider_sendgrid import NotAnEventBatch, parse_batch
from services.ingest.domain.provider_twilio import Keyword, classify, status_update

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
T, L, C = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def ev(event: str, **extra: object) -> dict[str, object]:
    return {
        "email": " Sam@Example.com ",
        "timestamp": 1_764_000_000,
        "event": event,
        "sg_event_id": f"id-{event}-{uuid.uuid4().hex[:6]}",
        "tenant_id": str(T),
        "lead_id": str(L),
        "command_id": str(C),
        **extra,
    }


@pytest.mark.parametrize(
    ("event", "kind", "suppress"),
    [
        ("delivered", SignalKind.DELIVERED, None),
        ("bounce", SignalKind.BOUNCED, "bounce"),
        ("spamreport", SignalKind.SPAM_REPORT, "spamreport"),
        ("unsubscribe", SignalKind.UNSUBSCRIBED, "unsubscribe"),
        ("group_unsubscribe", SignalKind.UNSUBSCRIBED, "group_unsubscribe"),
        ("open", SignalKind.OPENED, None),
        ("click", SignalKind.CLICKED, None),
        ("processed", None, None),
        ("deferred", None, None),
    ],
)
def test_sendgrid_event_maps_to_signal_and_suppression(
    event: str, kind: SignalKind | None, suppress: str | None
) -> None:
    (mapped,) = parse_batch(json.dumps([ev(event)]).encode(), NOW)
    assert mapped.kind == kind
    assert mapped.suppress == suppress
    assert (mapped.tenant_id, mapped.lead_id, mapped.command_id) == (T, L, C)
    assert mapped.email == "sam@example.com"
    assert mapped.occurred_at == datetime.fromtimestamp(1_764_000_000, UTC)


def test_dropped_suppresses_only_for_recipient_reasons() -> None:
    batch = [
        ev("dropped", reason="Bounced Address"),
        ev("dropped", reason="Unsubscribed Address"),
        ev("dropped", reason="Spam Content (if spam checker app enabled)"),
    ]
    mapped = parse_batch(json.dumps(batch).encode(), NOW)
    assert [m.kind for m in mapped] == [SignalKind.DROPPED] * 3
    assert [m.suppress for m in mapped] == ["bounce", "unsubscribe", None]


def test_blocked_bounce_is_not_a_hard_bounce() -> None:
    (mapped,) = parse_batch(json.dumps([ev("bounce", type="blocked")]).encode(), NOW)
    assert mapped.kind is SignalKind.UNDELIVERED
    assert mapped.suppress is None


def test_duplicates_in_a_batch_collapse_on_sg_event_id() -> None:
    first = ev("delivered")
    batch = [first, dict(first), ev("open"), {"event": "group_resubscribe", "email": "x@y.z"}]
    mapped = parse_batch(json.dumps(batch).encode(), NOW)
    assert [m.event for m in mapped] == ["delivered", "open"]


def test_event_without_our_custom_args_has_no_tenant_but_still_suppresses() -> None:
    raw = {"email": "a@b.co", "event": "bounce", "sg_event_id": "x1", "timestamp": 5}
    (mapped,) = parse_batch(json.dumps([raw]).encode(), NOW)
    assert mapped.tenant_id is None and mapped.suppress == "bounce"


@pytest.mark.parametrize("body", [b"{}", b"not json", b"[1, 2]", b'{"event": "open"}'])
def test_not_an_event_array_is_rejected(body: bytes) -> None:
    with pytest.raises(NotAnEventBatch):
        parse_batch(body, NOW)


@pytest.mark.parametrize(
    "body",
    ["STOP", "stop", "  Stop \n", "STOPALL", "unsubscribe", "Cancel", "END", "quit", "stop."],
)
def test_opt_out_words(body: str) -> None:
    assert classify(body) is Keyword.OPT_OUT


@pytest.mark.parametrize("body", ["START", " unstop", "yes"])
def test_opt_in_words(body: str) -> None:
    assert classify(body) is Keyword.OPT_IN


def test_help_and_replies() -> None:
    assert classify("help") is Keyword.HELP
    assert classify("Stop please") is Keyword.NONE  # not the keyword alone: a reply
    assert classify("Yes I'd like to book Tuesday") is Keyword.NONE
    assert classify("") is Keyword.NONE
    assert classify("whatever", opt_out_type="STOP") is Keyword.OPT_OUT


def test_twilio_status_mapping_and_forward_only_order() -> None:
    delivered = status_update("SM1", "delivered", None)
    assert delivered is not None and delivered.kind is SignalKind.DELIVERED
    assert "delivered" not in delivered.not_after and "read" in delivered.not_after
    sent = status_update("SM1", "sent", None)
    assert sent is not None and sent.kind is None and "delivered" in sent.not_after
    failed = status_update("SM1", "failed", "21610")
    assert failed is not None and failed.kind is SignalKind.FAILED
    assert failed.suppress == "twilio_21610"
    undelivered = status_update("SM1", "undelivered", "30007")
    assert undelivered is not None and undelivered.suppress is None
    assert status_update("SM1", "bogus", None) is None


def test_twiml_escapes_the_help_text() -> None:
    assert twiml("a & b") == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message>a &amp; b</Message></Response>'
    )


def test_sendgrid_reasons_are_masked_and_bounded_before_they_are_stored_or_published() -> None:
    reason = "550 5.1.1 <sam@example.com>: Recipient address rejected; call +1 202 555 0123"
    [event] = parse_batch(
        json.dumps([ev("bounce", reason=reason + "; " + "x" * 300)]).encode(), NOW
    )
    assert event.detail is not None and len(event.detail) <= 200
    assert "sam@example.com" not in event.detail and "555 0123" not in event.detail
    assert "s***@example.com" in event.detail and "***23" in event.detail
