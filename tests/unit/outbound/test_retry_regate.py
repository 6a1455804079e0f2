"""A touch point retried after a provider outage passes the safety gate again before every
attempt, at that attempt's time and on fresh facts: an SMS queued at 20:50 during an outage is
deferred to the next morning once the 21:00 limit passes (never sent at 2:00), a contact who
opted out or was suppressed meanwhile is skipped, and what does go out is rendered anew."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.base import Channel
from schemas.events import OutcomeStatus
from services.outbound.domain.model import OutboundMessage, SmsMessage
from services.outbound.errors import ProviderUnavailable
from tests.unit.outbound.support import PHONE, TENANT_ID, WHITELISTED, Clock, command, harness

NEW_YORK = ZoneInfo("America/New_York")
#: Tuesday 2026-03-10, 20:50 in New York: ten minutes of the SMS window (8:00-21:00) left.
EVENING = datetime(2026, 3, 10, 20, 50, tzinfo=NEW_YORK).astimezone(UTC)


@dataclass
class OutageSender:
    """A provider that answers "unavailable" (a 503, a refused connection) until `until`,
    then accepts; every attempt's time is recorded."""

    clock: Clock
    until: datetime
    name: str = "twilio"
    attempts: list[datetime] = field(default_factory=list)
    sent: list[OutboundMessage] = field(default_factory=list)
    lookup_settle_seconds: float = 0.0

    @property
    def pacing_key(self) -> str:
        return f"{self.name}:outage"

    async def send(self, message: OutboundMessage) -> str:
        self.attempts.append(self.clock())
        if self.clock() < self.until:
            raise ProviderUnavailable(self.name, "503 service unavailable")
        self.sent.append(message)
        return f"{self.name}-{len(self.sent)}"

    async def close(self) -> None:
        pass

    async def lookup(self, probe: object, *, since: datetime) -> object:
        raise AssertionError("an unavailable provider took nothing: no reconciliation")


def local(at: datetime) -> datetime:
    return at.astimezone(NEW_YORK)


async def test_an_sms_queued_at_2050_during_an_outage_is_deferred_not_sent_at_2am() -> None:
    clock = Clock(EVENING)
    outage_ends = datetime(2026, 3, 11, 2, 0, tzinfo=NEW_YORK).astimezone(UTC)
    sms = OutageSender(clock, until=outage_ends)
    h = harness(clock=clock, sms=sms)

    outcome = await h.handle(command(channel=Channel.SMS, at=EVENING))

    assert sms.sent == []  # nothing went out late at night
    assert outcome.status is OutcomeStatus.DEFERRED
    assert outcome.reason == "outside_send_window"
    assert outcome.deferred_until is not None
    assert local(outcome.deferred_until) == datetime(2026, 3, 11, 8, 0, tzinfo=NEW_YORK)
    assert len(sms.attempts) > 5  # it was retried during the outage ...
    assert local(max(sms.attempts)).hour == 20  # ... and never tried after 21:00
    assert local(clock.now) < datetime(2026, 3, 10, 21, 5, tzinfo=NEW_YORK)  # gave up at once


async def test_the_retried_sms_is_rendered_anew_its_validity_ending_with_the_window() -> None:
    clock = Clock(EVENING)
    sms = OutageSender(clock, until=EVENING + timedelta(minutes=6))
    h = harness(clock=clock, sms=sms)

    outcome = await h.handle(command(channel=Channel.SMS, at=EVENING))

    assert outcome.status is OutcomeStatus.SENT
    [message] = sms.sent
    assert isinstance(message, SmsMessage)
    window_left = datetime(2026, 3, 10, 21, 0, tzinfo=NEW_YORK) - sms.attempts[-1]
    assert 0 < message.validity_seconds <= window_left.total_seconds() < 4 * 60


async def test_the_retried_sms_still_names_the_number_the_gate_approved() -> None:
    """The Twilio sender refuses an SMS whose `to` is not the number the gate approved
    (`approved_to`): the message rendered anew for a retry carries the approval of that
    attempt's gate, or no retried SMS could ever go out."""
    clock = Clock(EVENING)
    sms = OutageSender(clock, until=EVENING + timedelta(minutes=2))
    h = harness(clock=clock, sms=sms)

    outcome = await h.handle(command(channel=Channel.SMS, phone=PHONE, at=EVENING))

    assert outcome.status is OutcomeStatus.SENT
    assert len(sms.attempts) > 1  # it was retried
    [message] = sms.sent
    assert isinstance(message, SmsMessage)
    assert message.approved_to == message.to == PHONE


async def test_a_contact_suppressed_during_the_outage_is_skipped_on_the_next_attempt() -> None:
    clock = Clock(EVENING - timedelta(hours=8))  # mid-day: the window stays open
    email = OutageSender(clock, until=clock.now + timedelta(hours=1), name="sendgrid")
    h = harness(clock=clock, email=email)
    cmd = command(channel=Channel.EMAIL, at=clock.now)

    async def stop_while_waiting(seconds: float) -> None:
        await Clock.sleep(clock, seconds)
        if len(email.attempts) == 3:  # the contact unsubscribes during the outage
            h.ledger.suppressions.add((TENANT_ID, Channel.EMAIL, WHITELISTED))

    clock.sleep = stop_while_waiting  # type: ignore[method-assign]
    h = harness(clock=clock, email=email, ledger=h.ledger)

    outcome = await h.handle(cmd)

    assert email.sent == []
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SKIPPED, "suppressed")
    assert len(email.attempts) == 3  # no attempt after the suppression


async def test_a_lead_that_opted_out_during_the_outage_is_skipped_on_the_next_attempt() -> None:
    clock = Clock(EVENING - timedelta(hours=8))
    sms = OutageSender(clock, until=clock.now + timedelta(hours=1))
    cmd = command(channel=Channel.SMS, phone=PHONE, at=clock.now)
    h = harness(clock=clock, sms=sms)

    async def opt_out_while_waiting(seconds: float) -> None:
        await Clock.sleep(clock, seconds)
        if len(sms.attempts) == 2:  # "STOP" reached the lead's state (the read model)
            h.ledger.opt_out_lead(cmd.lead_id, Channel.SMS)

    clock.sleep = opt_out_while_waiting  # type: ignore[method-assign]
    h = harness(clock=clock, sms=sms, ledger=h.ledger)

    outcome = await h.handle(cmd)

    assert sms.sent == []
    assert (outcome.status, outcome.reason) == (OutcomeStatus.SKIPPED, "lead_opted_out")
    assert len(sms.attempts) == 2
