"""The command handler with hand-written fakes: ledger semantics, outcomes, retries,
reconciliation, suppression, record-only, the seed's log lines."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

import pytest

from schemas.base import Channel
from schemas.events import OutcomeStatus
from services.outbound.domain.model import Found, LedgerStatus, NotFound, Unverifiable
from services.outbound.errors import (
    ProviderAmbiguous,
    ProviderRejected,
    ProviderUnavailable,
    UnsendableCommand,
)
from tests.support.phones import random_phone
from tests.unit.outbound.support import (
    NIGHT,
    WHITELISTED,
    Clock,
    InMemoryLedger,
    ScriptedSender,
    StaticTenants,
    command,
    harness,
    tenant_profile,
)


def _sent(sender: object) -> int:
    assert isinstance(sender, ScriptedSender)
    return len(sender.sent)


@pytest.mark.parametrize("channel", list(Channel))
async def test_whitelisted_command_is_sent_once_and_recorded(channel: Channel) -> None:
    h = harness()
    cmd = command(channel=channel)
    outcome = await h.handle(cmd)
    assert outcome.status is OutcomeStatus.SENT and not outcome.duplicate
    assert outcome.provider_message_id
    assert h.ledger.status(cmd.command_id) is LedgerStatus.SENT
    assert _sent(h.senders[channel]) == 1
    assert h.publisher.outcomes == [outcome]


async def test_redelivered_command_is_never_sent_again() -> None:
    h = harness()
    cmd = command()
    first = await h.handle(cmd)
    again = await h.handle(cmd)
    assert _sent(h.senders[Channel.EMAIL]) == 1
    assert again.duplicate and again.status is OutcomeStatus.SENT
    assert again.provider_message_id == first.provider_message_id


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"whitelist": frozenset()}, "whitelist_empty"),
        ({"whitelist": frozenset({"other@example.com"})}, "not_whitelisted"),
        ({"email_configured": False}, "email_disabled"),
    ],
)
async def test_skips_call_no_provider_and_are_recorded(kwargs: dict[str, object], reason: str):
    h = harness(**kwargs)  # type: ignore[arg-type]
    cmd = command()
    outcome = await h.handle(cmd)
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SKIPPED, reason)
    assert h.ledger.status(cmd.command_id) is LedgerStatus.SKIPPED
    assert all(_sent(s) == 0 and s.attempts == 0 for s in h.senders.values())  # type: ignore[attr-defined]


async def test_sms_blocked_when_email_not_whitelisted_and_when_twilio_missing() -> None:
    h = harness(sms_configured=False)
    outcome = await h.handle(command(channel=Channel.SMS))
    assert outcome.reason == "sms_disabled"
    h2 = harness()
    outcome2 = await h2.handle(command(channel=Channel.SMS, email="customer@gmail.com"))
    assert outcome2.reason == "not_whitelisted"
    assert _sent(h2.senders[Channel.SMS]) == 0


async def test_unknown_tenant_fails_closed() -> None:
    h = harness(tenants=StaticTenants())
    outcome = await h.handle(command())
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SKIPPED, "unknown_tenant")


async def test_record_only_is_gated_then_recorded_never_sent() -> None:
    h = harness()
    ok = command(record_only=True)
    blocked = command(record_only=True, email="stranger@gmail.com")
    assert (await h.handle(ok)).status is OutcomeStatus.RECORDED
    assert (await h.handle(blocked)).reason == "not_whitelisted"
    assert _sent(h.senders[Channel.EMAIL]) == 0
    # a later live command with the same id is a duplicate: a replay never causes a send
    live = ok.model_copy(update={"record_only": False})
    again = await h.handle(live)
    assert again.duplicate and again.status is OutcomeStatus.RECORDED
    assert _sent(h.senders[Channel.EMAIL]) == 0


async def test_record_only_replay_of_a_sent_command_is_a_duplicate_never_resent() -> None:
    h = harness(replay_send=True)  # even when replays may send, a held command_id never is
    live = command()
    assert (await h.handle(live)).status is OutcomeStatus.SENT
    replay = await h.handle(live.model_copy(update={"record_only": True}))
    assert replay.duplicate and replay.status is OutcomeStatus.SENT
    assert _sent(h.senders[Channel.EMAIL]) == 1


async def test_replay_send_flag_lets_a_gated_record_only_command_reach_the_provider_once():
    h = harness(replay_send=True)
    ok = command(record_only=True)
    blocked = command(record_only=True, email="stranger@gmail.com", channel=Channel.SMS)
    assert (await h.handle(ok)).status is OutcomeStatus.SENT
    assert (await h.handle(blocked)).reason == "not_whitelisted"  # the flag never loosens the gate
    again = await h.handle(ok)
    assert again.duplicate and again.status is OutcomeStatus.SENT
    assert _sent(h.senders[Channel.EMAIL]) == 1 and _sent(h.senders[Channel.SMS]) == 0


async def test_deferred_then_reclaimed_when_the_sequencer_re_emits() -> None:
    clock = Clock(NIGHT)
    h = harness(clock=clock)
    cmd = command(at=NIGHT)
    deferred = await h.handle(cmd)
    assert deferred.status is OutcomeStatus.DEFERRED and deferred.deferred_until is not None
    assert h.ledger.status(cmd.command_id) is LedgerStatus.DEFERRED
    # re-emitted early: still deferred (duplicate), nothing sent
    early = await h.handle(cmd)
    assert early.duplicate and early.status is OutcomeStatus.DEFERRED
    # re-emitted when due: claimed again and sent
    clock.now = deferred.deferred_until
    sent = await h.handle(cmd.model_copy(update={"due_at": deferred.deferred_until}))
    assert sent.status is OutcomeStatus.SENT and not sent.duplicate
    assert _sent(h.senders[Channel.EMAIL]) == 1


async def test_frequency_cap_across_leads_of_one_contact() -> None:
    h = harness()
    first = await h.handle(command(lead_id=uuid.uuid4()))
    second = await h.handle(command(lead_id=uuid.uuid4(), email=" SAM@example.com "))
    assert first.status is OutcomeStatus.SENT
    assert (second.status, second.reason) == (OutcomeStatus.SKIPPED, "frequency_cap")
    # the other channel has its own cap; a day later the contact may hear from us again
    assert (await h.handle(command(channel=Channel.SMS))).status is OutcomeStatus.SENT
    h.clock.now += timedelta(hours=24, seconds=1)
    assert (await h.handle(command(lead_id=uuid.uuid4()))).status is OutcomeStatus.SENT


async def test_a_campaign_step_over_the_frequency_cap_waits_for_its_window() -> None:
    """Declined work, a review, a reminder: the cap defers them (and the sequencer emits
    them again then) rather than dropping them for good as an estimate nurture step."""
    h = harness()
    first = await h.handle(command(lead_id=uuid.uuid4(), campaign="declined"))
    assert first.status is OutcomeStatus.SENT  # another order's declined work, same customer
    review = command(lead_id=uuid.uuid4(), campaign="declined")
    waited = await h.handle(review)
    assert (waited.status, waited.reason) == (OutcomeStatus.DEFERRED, "frequency_cap")
    assert waited.deferred_until == h.clock.now + timedelta(hours=24, minutes=2)
    h.clock.now = waited.deferred_until - timedelta(seconds=60)  # back early, by the skew
    again = await h.handle(review.model_copy(update={"due_at": waited.deferred_until}))
    assert again.status is OutcomeStatus.SENT


async def test_suppressed_contact_is_skipped() -> None:
    h = harness()
    await h.ledger.suppress(
        tenant_id=tenant_profile().id,
        channel=Channel.SMS,
        contact="+12025550123",
        reason="stop",
        source="test",
    )
    outcome = await h.handle(command(channel=Channel.SMS, phone="(202) 555-0123"))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SKIPPED, "suppressed")


async def test_429_and_unavailable_are_retried_with_backoff_honouring_retry_after() -> None:
    sender = ScriptedSender(
        "twilio",
        script=[
            ProviderUnavailable("twilio", "twilio_429_20429", retry_after=7.0),
            ProviderUnavailable("twilio", "connection failed"),
        ],
    )
    h = harness(sms=sender)
    outcome = await h.handle(command(channel=Channel.SMS))
    assert outcome.status is OutcomeStatus.SENT
    assert sender.attempts == 3 and len(sender.sent) == 1
    assert sum(h.clock.slept) >= 7.0  # Retry-After honoured


async def test_opted_out_rejection_adds_a_suppression_and_fails_without_retry() -> None:
    sender = ScriptedSender(
        "twilio", script=[ProviderRejected("twilio", "twilio_21610_opted_out", suppress=True)]
    )
    h = harness(sms=sender)
    cmd = command(channel=Channel.SMS)
    outcome = await h.handle(cmd)
    assert (outcome.status, outcome.reason) == (OutcomeStatus.FAILED, "twilio_21610_opted_out")
    assert sender.attempts == 1
    assert (tenant_profile().id, Channel.SMS, "+12025550123") in h.ledger.suppressions
    # the next SMS to that contact is skipped before any provider call
    again = await h.handle(command(channel=Channel.SMS, step=3))
    assert again.reason == "suppressed" and sender.attempts == 1


async def test_invalid_number_fails_permanently() -> None:
    sender = ScriptedSender(
        "twilio", script=[ProviderRejected("twilio", "twilio_21211_invalid_number")]
    )
    h = harness(sms=sender)
    outcome = await h.handle(command(channel=Channel.SMS))
    assert (outcome.status, outcome.reason) == (OutcomeStatus.FAILED, "twilio_21211_invalid_number")
    assert sender.attempts == 1


async def test_ambiguous_failure_found_by_reconciliation_is_not_resent() -> None:
    sender = ScriptedSender(
        "twilio",
        script=[ProviderAmbiguous("twilio", "twilio_500_20500")],
        lookups=[Found("SM-found")],
    )
    h = harness(sms=sender)
    outcome = await h.handle(command(channel=Channel.SMS))
    assert (outcome.status, outcome.provider_message_id) == (OutcomeStatus.SENT, "SM-found")
    assert outcome.reason == "reconciled_sent"
    assert sender.attempts == 1 and not sender.sent


async def test_ambiguous_failure_not_found_is_sent_again_once() -> None:
    sender = ScriptedSender(
        "twilio", script=[ProviderAmbiguous("twilio", "twilio_500_20500")], lookups=[NotFound()]
    )
    h = harness(sms=sender)
    outcome = await h.handle(command(channel=Channel.SMS))
    assert outcome.status is OutcomeStatus.SENT and outcome.reason == "accepted"
    assert sender.attempts == 2 and len(sender.sent) == 1


async def test_unverifiable_ambiguous_send_is_marked_unknown_never_resent() -> None:
    sender = ScriptedSender(
        "sendgrid",
        script=[ProviderAmbiguous("sendgrid", "no response")],
        lookups=[Unverifiable("sendgrid_no_query_api")],
    )
    h = harness(email=sender)
    cmd = command()
    outcome = await h.handle(cmd)
    assert outcome.status is OutcomeStatus.UNKNOWN
    assert h.ledger.status(cmd.command_id) is LedgerStatus.UNKNOWN
    assert sender.attempts == 1
    assert (await h.handle(cmd)).duplicate


async def test_a_template_that_cannot_render_fails_with_reason_then_raises_for_the_dlq() -> None:
    h = harness()
    cmd = command(template="no_such_template")
    with pytest.raises(UnsendableCommand, match="unknown_template"):
        await h.handle(cmd)
    [outcome] = h.publisher.outcomes
    assert outcome.status is OutcomeStatus.FAILED
    assert outcome.reason.startswith("unknown_template")
    row = await h.ledger.get(cmd.command_id)
    assert row is not None and row.status is LedgerStatus.FAILED  # no claim left dangling
    assert _sent(h.senders[Channel.EMAIL]) == 0


async def test_claim_left_by_a_dead_process_is_reconciled_not_blindly_resent() -> None:
    ledger = InMemoryLedger()
    clock = Clock()
    cmd = command(channel=Channel.SMS)
    # a previous process claimed it and died
    await ledger.claim(cmd, recipient="+12025550123", now=clock.now, cap_since=clock.now)
    found = ScriptedSender("twilio", lookups=[Found("SM-before-crash")])
    h = harness(sms=found, ledger=ledger, clock=clock, stale=timedelta(seconds=30))
    outcome = await h.handle(cmd)
    assert outcome.status is OutcomeStatus.SENT
    assert outcome.provider_message_id == "SM-before-crash"
    assert found.attempts == 0
    assert clock.now - cmd.issued_at >= timedelta(seconds=30)  # waited until it was stale


async def test_claim_left_by_a_dead_process_not_found_is_sent() -> None:
    ledger = InMemoryLedger()
    clock = Clock()
    cmd = command(channel=Channel.SMS)
    await ledger.claim(cmd, recipient="+12025550123", now=clock.now, cap_since=clock.now)
    sender = ScriptedSender("twilio", lookups=[NotFound()])
    h = harness(sms=sender, ledger=ledger, clock=clock)
    outcome = await h.handle(cmd)
    assert outcome.status is OutcomeStatus.SENT and len(sender.sent) == 1
    assert sender.probes[0].chat_link.endswith(str(cmd.lead_id))


async def test_claim_that_its_owner_finishes_is_reported_as_duplicate() -> None:
    ledger = InMemoryLedger()
    clock = Clock()
    cmd = command()
    await ledger.claim(cmd, recipient=WHITELISTED, now=clock.now, cap_since=clock.now)

    async def owner_finishes(seconds: float) -> None:
        clock.now += timedelta(seconds=seconds)
        await ledger.finish(
            cmd.command_id, status=LedgerStatus.SENT, reason="accepted", now=clock.now
        )

    # the live owner answers while we wait
    clock.sleep = owner_finishes  # type: ignore[method-assign]
    h = harness(ledger=ledger, clock=clock)
    outcome = await h.handle(cmd)
    assert outcome.duplicate and outcome.status is OutcomeStatus.SENT
    assert _sent(h.senders[Channel.EMAIL]) == 0


async def test_seed_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    h = harness()
    await h.handle(command(email=" Sam@Example.com "))
    await h.handle(command(email="jane.doe@gmail.com"))
    text = caplog.text
    assert "[TouchPoint] Email sam@example.com is whitelisted → SENDING" in text
    assert "Email j***@gmail.com NOT whitelisted; skipping all outbound" in text
    assert "jane.doe" not in text


async def test_pacing_spaces_sends_per_sender() -> None:
    phones = [random_phone() for _ in range(3)]
    h = harness(rates={"twilio": (1.0, 1)}, phones=frozenset(phones))
    for phone in phones:
        await h.handle(command(channel=Channel.SMS, phone=phone))
    assert h.clock.slept == [1.0, 1.0]  # 1 message/s: the 2nd and 3rd wait a second each


async def test_a_duplicate_reports_the_original_decision_time_not_now() -> None:
    """Replays re-deliver commands long after they were sent: the duplicate outcome carries
    the ledger's decision time, or the lead's last touch would move to the replay's time."""
    h = harness()
    cmd = command()
    first = await h.handle(cmd)
    h.clock.now += timedelta(days=3)
    again = await h.handle(cmd)
    assert again.duplicate
    assert again.decided_at == first.decided_at
