"""The gate's consent rules (DESIGN §6 4b): one reason each, and never instead of the whitelist;
the handler keeps the consent it decided on with the decision."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord
from services.outbound.domain.model import LedgerStatus
from services.outbound.domain.safety_gate import GateInput, decide
from tests.unit.outbound.support import (
    PHONE,
    WHITELISTED,
    InMemoryLedger,
    command,
    gate_input,
    harness,
)

AT = datetime(2026, 3, 1, tzinfo=UTC)
SMS = ConsentRecord(Channel.SMS, PHONE, "shopmonkey", AT, "shopmonkey:customer:c1:1")
EMAIL = ConsentRecord(Channel.EMAIL, WHITELISTED, "shopmonkey", AT, "shopmonkey:customer:c1:1")


def gate(channel: Channel, consent: ConsentRecord | None, **overrides: object) -> GateInput:
    return gate_input(channel=channel, consent=consent, **overrides)


def reason(channel: Channel, consent: ConsentRecord | None, **overrides: object) -> str:
    decision = decide(gate(channel, consent, **overrides))
    return "send" if decision.allowed else decision.reason


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "sms_no_consent"),  # nothing recorded is no consent
        (SMS, "sms_no_consent"),  # a record that says nothing either
        (dataclasses.replace(SMS, opted_in=False), "sms_no_consent"),
        (dataclasses.replace(SMS, opted_in=False, marketing_opt_in=True), "sms_no_consent"),
        (dataclasses.replace(SMS, opted_in=True, marketing_opt_in=False), "sms_no_consent"),
        (dataclasses.replace(SMS, opted_in=True), "send"),
        # marketingOptIn read as the SMS opt-in (help centre), the phone saying nothing
        (dataclasses.replace(SMS, marketing_opt_in=True), "send"),
        (dataclasses.replace(SMS, opted_in=True, line_type="landline"), "landline"),
        (dataclasses.replace(SMS, opted_in=True, line_type="voip"), "send"),
        # prefers email, and no email record refuses it: the SMS gives way
        (dataclasses.replace(SMS, opted_in=True, preferred="email"), "contact_preference"),
        (dataclasses.replace(SMS, opted_in=True, preferred="sms"), "send"),
    ],
)
def test_sms_consent_rules(record: ConsentRecord | None, expected: str) -> None:
    assert reason(Channel.SMS, record) == expected


def test_an_sms_to_a_customer_preferring_an_unsubscribed_email_goes() -> None:
    prefers_email = dataclasses.replace(SMS, opted_in=True, preferred="email")
    unsubscribed = dataclasses.replace(EMAIL, opted_in=False)
    assert reason(Channel.SMS, prefers_email, other_consent=unsubscribed) == "send"
    subscribed = dataclasses.replace(EMAIL, opted_in=True)
    assert reason(Channel.SMS, prefers_email, other_consent=subscribed) == "contact_preference"


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "send"),  # email: no record is no refusal
        (dataclasses.replace(EMAIL, opted_in=False), "email_unsubscribed"),
        (dataclasses.replace(EMAIL, opted_in=True), "send"),
        # marketingOptIn is not read as an email refusal (it is the SMS opt-in, or unknown)
        (dataclasses.replace(EMAIL, marketing_opt_in=False), "send"),
        # prefers SMS but no SMS consent is recorded: the email still goes
        (dataclasses.replace(EMAIL, opted_in=True, preferred="sms"), "send"),
        (dataclasses.replace(EMAIL, preferred="email"), "send"),
    ],
)
def test_email_consent_rules(record: ConsentRecord | None, expected: str) -> None:
    assert reason(Channel.EMAIL, record) == expected


@pytest.mark.parametrize(
    ("sms", "expected"),
    [
        (dataclasses.replace(SMS, opted_in=True), "contact_preference"),
        (dataclasses.replace(SMS, opted_in=False), "send"),
        (dataclasses.replace(SMS, opted_in=True, line_type="landline"), "send"),
        (None, "send"),
    ],
)
def test_an_email_gives_way_only_to_an_sms_consent_allows(
    sms: ConsentRecord | None, expected: str
) -> None:
    prefers_sms = dataclasses.replace(EMAIL, opted_in=True, preferred="sms")
    assert reason(Channel.EMAIL, prefers_sms, other_consent=sms) == expected


@pytest.mark.parametrize("channel", list(Channel))
def test_consent_never_replaces_the_whitelists(channel: Channel) -> None:
    full = dataclasses.replace(SMS, opted_in=True, marketing_opt_in=True)
    assert reason(channel, full, whitelist=frozenset()) == "whitelist_empty"
    assert reason(channel, full, email="jane.doe@gmail.com") == "not_whitelisted"
    if channel is Channel.SMS:
        assert reason(channel, full, phone_whitelist=frozenset()) == "phone_whitelist_empty"


async def test_handler_records_the_reason_and_the_consent_behind_it() -> None:
    ledger = InMemoryLedger(default_sms_consent=False)
    refused = dataclasses.replace(SMS, opted_in=False, line_type="mobile")
    ledger.consents[(Channel.SMS, PHONE)] = refused
    h = harness(ledger=ledger)
    cmd = command(channel=Channel.SMS)
    outcome = await h.handle(cmd)
    assert (outcome.status.value, outcome.reason) == ("skipped", "sms_no_consent")
    assert ledger.status(cmd.command_id) is LedgerStatus.SKIPPED
    assert ledger.decided_consent[cmd.command_id] == refused
    assert h.senders[Channel.SMS].sent == []  # type: ignore[attr-defined]
    # the customer opts in at the source: the next touch reads it and goes
    ledger.consents[(Channel.SMS, PHONE)] = dataclasses.replace(refused, opted_in=True)
    later = command(channel=Channel.SMS, step=1)
    assert (await h.handle(later)).reason in ("accepted", "whitelisted")
    assert len(h.senders[Channel.SMS].sent) == 1  # type: ignore[attr-defined]


async def test_handler_reads_the_other_channels_consent_for_the_preference() -> None:
    """An email to a customer who prefers SMS goes while the phone has no SMS opt-in, and gives
    way once the customer opts in to texts (read at the next touch)."""
    ledger = InMemoryLedger(default_sms_consent=False)
    ledger.consents[(Channel.EMAIL, WHITELISTED)] = dataclasses.replace(
        EMAIL, opted_in=True, preferred="sms"
    )
    h = harness(ledger=ledger)
    first = await h.handle(command(channel=Channel.EMAIL))
    assert first.status.value == "sent"
    ledger.consents[(Channel.SMS, PHONE)] = dataclasses.replace(SMS, opted_in=True)
    second = await h.handle(command(channel=Channel.EMAIL, step=2))
    assert (second.status.value, second.reason) == ("skipped", "contact_preference")
