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
        (dataclasses.replace(SMS, opted_in=True, preferred="email"), "contact_preference"),
        (dataclasses.replace(SMS, opted_in=True, preferred="sms"), "send"),
    ],
)
def test_sms_consent_rules(record: ConsentRecord | None, expected: str) -> None:
    assert reason(Channel.SMS, record) == expected


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (None, "send"),  # email: no record is no refusal
        (dataclasses.replace(EMAIL, opted_in=False), "email_unsubscribed"),
        (dataclasses.replace(EMAIL, opted_in=True), "send"),
        # marketingOptIn is not read as an email refusal (it is the SMS opt-in, or unknown)
        (dataclasses.replace(EMAIL, marketing_opt_in=False), "send"),
        (dataclasses.replace(EMAIL, opted_in=True, preferred="sms"), "contact_preference"),
        (dataclasses.replace(EMAIL, preferred="email"), "send"),
    ],
)
def test_email_consent_rules(record: ConsentRecord | None, expected: str) -> None:
    assert reason(Channel.EMAIL, record) == expected


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
