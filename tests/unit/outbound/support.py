"""Hand-written fakes of outbound's ports and builders of commands, tenants and handlers."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from fakes._recorder import FakeState
from fakes.sendgrid_server import create_app as sendgrid_app
from fakes.twilio_server import create_app as twilio_app
from schemas.base import Channel, command_id_for
from schemas.events import Recipient, TouchPointCommand, TouchPointOutcome
from services.common.domain.consent import ConsentRecord
from services.outbound.adapters.sendgrid_sender import SendGridSender
from services.outbound.adapters.templates import JinjaRenderer
from services.outbound.adapters.twilio_sender import TwilioSender
from services.outbound.domain.model import (
    CAP_STATUSES,
    AlreadyClaimed,
    Claimed,
    ClaimResult,
    EmailMessage,
    GateFacts,
    LedgerRow,
    LedgerStatus,
    Lookup,
    NotFound,
    OutboundMessage,
    Probe,
    TenantProfile,
)
from services.outbound.domain.safety_gate import GateInput, gate_view
from services.outbound.ports import Sender
from services.outbound.service_layer.delivery import Delivery, Pacer, RetryPolicy
from services.outbound.service_layer.handler import HandlerConfig, TouchPointHandler
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER

#: Tuesday 2026-03-10 15:00 UTC = 11:00 in New York (EDT): every window is open.
OPEN_NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
#: 03:00 UTC = 23:00 the evening before in New York: every window is closed.
NIGHT = datetime(2026, 3, 10, 3, 0, tzinfo=UTC)
#: A phone the source recorded as opted in to SMS (the gate's tests about other rules use it).
OPTED_IN = ConsentRecord(
    Channel.SMS, "+12025550123", "shopmonkey", datetime(2026, 1, 1, tzinfo=UTC), "t", opted_in=True
)
TENANT_ID = uuid.UUID("11111111-2222-3333-4444-555555555555")
WHITELISTED = "sam@example.com"
PHONE = "+12025550123"


def gate_input(**overrides: Any) -> GateInput:
    """What the gate sees of a whitelisted email lead whose phone is listed and opted in, in an
    open window; `overrides` change any of it."""
    values: dict[str, Any] = {
        "channel": Channel.EMAIL,
        "email": WHITELISTED,
        "phone": PHONE,
        "whitelist": frozenset({WHITELISTED}),
        "email_configured": True,
        "sms_configured": True,
        "tenant": gate_view(tenant_profile()),
        "now": OPEN_NOW,
        "phone_whitelist": frozenset({PHONE}),
        "consent": OPTED_IN,
    }
    values.update(overrides)
    return GateInput(**values)


def tenant_profile(**overrides: Any) -> TenantProfile:
    values: dict[str, Any] = {
        "id": TENANT_ID,
        "name": "Tint World Springfield",
        "timezone": "America/New_York",
        "active": True,
        "us_state": "IL",
        "postal_address": "1 Main St, Springfield, IL 62701",
        "phone": "+12025550111",
        "hours": {d: (time(8), time(18)) for d in range(6)},
        "catalog": ("Window tint", "Ceramic coating"),
    }
    values.update(overrides)
    return TenantProfile(**values)


def command(
    *,
    channel: Channel = Channel.EMAIL,
    email: str | None = WHITELISTED,
    phone: str | None = PHONE,
    template: str | None = None,
    step: int = 0,
    lead_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID = TENANT_ID,
    record_only: bool = False,
    at: datetime = OPEN_NOW,
    context: dict[str, Any] | None = None,
    campaign: str | None = None,
) -> TouchPointCommand:
    lead = lead_id or uuid.uuid4()
    return TouchPointCommand(
        command_id=command_id_for(lead, step, channel, campaign),
        campaign=campaign,
        tenant_id=tenant_id,
        lead_id=lead,
        step_index=step,
        channel=channel,
        template=template
        or ("estimate_followup" if channel is Channel.EMAIL else "estimate_reminder"),
        due_at=at,
        issued_at=at,
        recipient=Recipient(email=email, phone=phone, first_name="Sam", last_name="Driver"),
        context=context
        if context is not None
        else {"vehicle": "2019 Honda Civic", "services": ["Window tint"]},
        record_only=record_only,
    )


class Clock:
    """A settable clock; `sleep` advances it instead of waiting."""

    def __init__(self, now: datetime = OPEN_NOW) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += timedelta(seconds=seconds)
        await asyncio.sleep(0)


@dataclass
class _Entry:
    row: LedgerRow
    decided_at: datetime | None = None


class InMemoryLedger:
    """The `Ledger` contract with the PostgreSQL adapter's semantics, in a dict (both are held
    to ledger_contract.py)."""

    def __init__(self, *, default_sms_consent: bool = True) -> None:
        self.rows: dict[uuid.UUID, _Entry] = {}
        self.suppressions: set[tuple[uuid.UUID | None, Channel, str]] = set()
        #: (lead, channel) the read model shows opted out (the projection's `leads` flags)
        self.lead_opt_outs: set[tuple[uuid.UUID, Channel]] = set()
        self.claims = 0
        #: source consent by (channel, contact), as `source_consent` holds it
        self.consents: dict[tuple[Channel, str], ConsentRecord] = {}
        #: the consent each decision was recorded with, by command id
        self.decided_consent: dict[uuid.UUID, ConsentRecord | None] = {}
        #: tests about other rules: a phone without a record counts as opted in
        self.default_sms_consent = default_sms_consent
        #: tenants' timezones (the location's day of the campaign cap); tenants.timezone's
        #: default otherwise
        self.timezones: dict[uuid.UUID, str] = {}

    def _consent(self, channel: Channel, to: str | None) -> ConsentRecord | None:
        if to is None:
            return None
        record = self.consents.get((channel, to))
        if record is None and channel is Channel.SMS and self.default_sms_consent:
            return ConsentRecord(
                channel, to, "test", OPEN_NOW - timedelta(days=1), "test", opted_in=True
            )
        return record

    def opt_out_lead(self, lead_id: uuid.UUID, channel: Channel) -> None:
        self.lead_opt_outs.add((lead_id, channel))

    def _facts(
        self,
        cid: uuid.UUID,
        tenant: uuid.UUID,
        lead: uuid.UUID,
        channel: Channel,
        to: str | None,
        since: datetime,
        other: str | None = None,
        campaign: str | None = None,
        now: datetime | None = None,
    ) -> GateFacts:
        suppressed = to is not None and (
            (tenant, channel, to) in self.suppressions or (None, channel, to) in self.suppressions
        )
        recent = sum(
            1
            for e in self.rows.values()
            if e.row.command_id != cid
            and e.row.tenant_id == tenant
            and e.row.channel is channel
            and to is not None
            and e.row.recipient == to
            and e.row.status in CAP_STATUSES
            and (e.decided_at or e.row.claimed_at) >= since
        )
        other_channel = Channel.SMS if channel is Channel.EMAIL else Channel.EMAIL
        at = now or datetime.now(UTC)
        zone = ZoneInfo(self.timezones.get(tenant, "America/New_York"))
        day_start = datetime.combine(at.astimezone(zone).date(), time(0), tzinfo=zone)

        def same_customer(row: LedgerRow) -> bool:
            return row.command_id != cid and (
                (row.channel is channel and to is not None and row.recipient == to)
                or (row.channel is other_channel and other is not None and row.recipient == other)
            )

        kind = (campaign or "nurture").split(":", 1)[0]
        today = any(
            same_customer(e.row)
            and e.row.tenant_id == tenant
            and e.row.status in CAP_STATUSES
            and (e.row.campaign or "nurture").split(":", 1)[0] != kind
            and (e.decided_at or e.row.claimed_at) >= day_start
            for e in self.rows.values()
        )
        review = campaign == "review" and any(
            same_customer(e.row)
            and e.row.tenant_id == tenant
            and e.row.lead_id != lead
            and e.row.campaign == "review"
            and e.row.status in CAP_STATUSES
            and (e.decided_at or e.row.claimed_at) >= at - timedelta(days=90)
            for e in self.rows.values()
        )
        return GateFacts(
            other_campaign_today=today,
            review_recent=review,
            suppressed=suppressed,
            recent_sends=recent,
            lead_opted_out=(lead, channel) in self.lead_opt_outs,
            consent=self._consent(channel, to),
            other_consent=self._consent(
                Channel.SMS if channel is Channel.EMAIL else Channel.EMAIL, other
            ),
        )

    async def claim(
        self,
        command: TouchPointCommand,
        *,
        recipient: str | None,
        now: datetime,
        cap_since: datetime,
        other_contact: str | None = None,
    ) -> ClaimResult:
        self.claims += 1
        cid = command.command_id
        facts = self._facts(
            cid,
            command.tenant_id,
            command.lead_id,
            command.channel,
            recipient,
            cap_since,
            other_contact,
            command.campaign,
            now,
        )
        entry = self.rows.get(cid)
        if entry is None:
            self.rows[cid] = _Entry(
                LedgerRow(
                    command_id=cid,
                    tenant_id=command.tenant_id,
                    lead_id=command.lead_id,
                    step_index=command.step_index,
                    channel=command.channel,
                    status=LedgerStatus.CLAIMED,
                    claimed_at=now,
                    recipient=recipient,
                    due_at=command.due_at,
                    record_only=command.record_only,
                    attempts=1,
                    campaign=command.campaign,
                )
            )
            return Claimed(facts)
        row = entry.row
        if (
            row.status is LedgerStatus.DEFERRED
            and row.deferred_until is not None
            and row.deferred_until <= now + timedelta(seconds=60)
        ):
            entry.row = dataclasses.replace(
                row,
                status=LedgerStatus.CLAIMED,
                claimed_at=now,
                reason=None,
                deferred_until=None,
                record_only=command.record_only,
                recipient=recipient,
                due_at=command.due_at,
                attempts=row.attempts + 1,
                decided_at=None,
            )
            entry.decided_at = None
            return Claimed(facts, reclaimed=True)
        return AlreadyClaimed(row)

    async def facts(
        self,
        *,
        command_id: uuid.UUID,
        tenant_id: uuid.UUID,
        lead_id: uuid.UUID,
        channel: Channel,
        recipient: str | None,
        cap_since: datetime,
        other_contact: str | None = None,
        campaign: str | None = None,
        now: datetime | None = None,
    ) -> GateFacts:
        return self._facts(
            command_id,
            tenant_id,
            lead_id,
            channel,
            recipient,
            cap_since,
            other_contact,
            campaign,
            now,
        )

    async def get(self, command_id: uuid.UUID) -> LedgerRow | None:
        entry = self.rows.get(command_id)
        return entry.row if entry else None

    async def heartbeat(self, command_id: uuid.UUID, *, now: datetime) -> None:
        entry = self.rows.get(command_id)
        if entry is not None and entry.row.status is LedgerStatus.CLAIMED:
            entry.row = dataclasses.replace(entry.row, claimed_at=now)

    async def take_over(
        self, command_id: uuid.UUID, *, seen_claimed_at: datetime, now: datetime
    ) -> bool:
        entry = self.rows.get(command_id)
        if (
            entry is None
            or entry.row.status is not LedgerStatus.CLAIMED
            or entry.row.claimed_at != seen_claimed_at
        ):
            return False
        entry.row = dataclasses.replace(entry.row, claimed_at=now, attempts=entry.row.attempts + 1)
        return True

    async def finish(
        self,
        command_id: uuid.UUID,
        *,
        status: LedgerStatus,
        reason: str,
        now: datetime,
        provider: str | None = None,
        provider_message_id: str | None = None,
        deferred_until: datetime | None = None,
        only_if_claimed_at: datetime | None = None,
        consent: ConsentRecord | None = None,
    ) -> bool:
        entry = self.rows.get(command_id)
        if entry is None or entry.row.status is not LedgerStatus.CLAIMED:
            return False
        if only_if_claimed_at is not None and entry.row.claimed_at != only_if_claimed_at:
            return False
        entry.row = dataclasses.replace(
            entry.row,
            status=status,
            reason=reason,
            provider=provider or entry.row.provider,
            provider_message_id=provider_message_id or entry.row.provider_message_id,
            deferred_until=deferred_until,
            decided_at=now,
        )
        entry.decided_at = now
        self.decided_consent[command_id] = consent
        return True

    async def stale_claims(self, *, older_than: datetime, limit: int = 100) -> list[LedgerRow]:
        rows = [
            e.row
            for e in self.rows.values()
            if e.row.status is LedgerStatus.CLAIMED and e.row.claimed_at < older_than
        ]
        return sorted(rows, key=lambda r: r.claimed_at)[:limit]

    async def suppress(
        self, *, tenant_id: uuid.UUID, channel: Channel, contact: str, reason: str, source: str
    ) -> None:
        self.suppressions.add((tenant_id, channel, contact))

    def status(self, command_id: uuid.UUID) -> LedgerStatus | None:
        entry = self.rows.get(command_id)
        return entry.row.status if entry else None


class StaticTenants:
    def __init__(self, *profiles: TenantProfile) -> None:
        self.profiles = {p.id: p for p in profiles}

    async def get(self, tenant_id: uuid.UUID) -> TenantProfile | None:
        return self.profiles.get(tenant_id)


class RecordingPublisher:
    def __init__(self) -> None:
        self.outcomes: list[TouchPointOutcome] = []

    async def publish(self, outcome: TouchPointOutcome) -> None:
        self.outcomes.append(outcome)


@dataclass
class ScriptedSender:
    """A `Sender` that raises the scripted errors first, then accepts."""

    name: str = "sendgrid"
    script: list[Exception] = field(default_factory=list)
    lookups: list[Lookup] = field(default_factory=list)
    sent: list[OutboundMessage] = field(default_factory=list)
    attempts: int = 0
    lookup_settle_seconds: float = 0.0
    probes: list[Probe] = field(default_factory=list)

    @property
    def pacing_key(self) -> str:
        return f"{self.name}:test"

    async def send(self, message: OutboundMessage) -> str:
        self.attempts += 1
        if self.script:
            raise self.script.pop(0)
        self.sent.append(message)
        return f"{self.name}-{len(self.sent)}"

    async def lookup(self, probe: Probe, *, since: datetime) -> Lookup:
        self.probes.append(probe)
        return self.lookups.pop(0) if self.lookups else NotFound()

    async def close(self) -> None:
        pass


def renderer(
    chat: str = "https://chat.example.com", loader: jinja2.BaseLoader | None = None
) -> JinjaRenderer:
    """The renderer of the packaged templates (or of `loader`'s)."""
    return JinjaRenderer(
        chat_base_url=chat,
        from_email="noreply@shop.example",
        from_name=None,
        unsubscribe_base_url="https://shop.example/u",
        unsubscribe_signer=UNSUBSCRIBE_SIGNER,
        loader=loader,
    )


def email_message() -> EmailMessage:
    """The rendered email of the default command, at OPEN_NOW."""
    msg = renderer().render(command(), tenant_profile(), now=OPEN_NOW, validity_seconds=60)
    assert isinstance(msg, EmailMessage)
    return msg


@dataclass
class Harness:
    handler: TouchPointHandler
    ledger: InMemoryLedger
    publisher: RecordingPublisher
    senders: dict[Channel, Sender]
    clock: Clock
    tenants: StaticTenants

    async def handle(self, cmd: TouchPointCommand) -> TouchPointOutcome:
        return await self.handler.handle(cmd)


def harness(
    *,
    whitelist: frozenset[str] = frozenset({WHITELISTED}),
    email: Sender | None = None,
    sms: Sender | None = None,
    email_configured: bool = True,
    sms_configured: bool = True,
    tenants: StaticTenants | None = None,
    ledger: InMemoryLedger | None = None,
    clock: Clock | None = None,
    caps: dict[Channel, int] | None = None,
    stale: timedelta = timedelta(seconds=30),
    rates: dict[str, tuple[float, int]] | None = None,
    replay_send: bool = False,
    phones: frozenset[str] = frozenset({PHONE}),
) -> Harness:
    """`phones`: LEAD_PHONE_WHITELIST (the default test phone by default)."""
    clock = clock or Clock()
    ledger = ledger or InMemoryLedger()
    publisher = RecordingPublisher()
    senders: dict[Channel, Sender] = {}
    if email_configured:
        senders[Channel.EMAIL] = email or ScriptedSender("sendgrid")
    if sms_configured:
        senders[Channel.SMS] = sms or ScriptedSender("twilio")
    tenants = tenants or StaticTenants(tenant_profile())
    delivery = Delivery(
        ledger=ledger,
        pacer=Pacer(rates or {}, monotonic=lambda: clock.now.timestamp()),
        policy=RetryPolicy(base=0.5, cap=8.0, heartbeat_every=stale.total_seconds() / 3),
        clock=clock,
        sleep=clock.sleep,
    )
    handler = TouchPointHandler(
        config=HandlerConfig(
            whitelist=whitelist,
            email_configured=email_configured,
            sms_configured=sms_configured,
            frequency_caps=caps or {Channel.EMAIL: 1, Channel.SMS: 1},
            claim_stale=stale,
            replay_send=replay_send,
            phone_whitelist=phones,
        ),
        ledger=ledger,
        tenants=tenants,
        renderer=renderer(),
        senders=senders,
        publisher=publisher,
        delivery=delivery,
        clock=clock,
        sleep=clock.sleep,
    )
    return Harness(handler, ledger, publisher, senders, clock, tenants)


# real providers on loopback ------------------------------------------------------------------
@dataclass
class FakeProviders:
    sendgrid_url: str
    twilio_url: str
    sendgrid: FakeState
    twilio: FakeState
    twilio_app: web.Application

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.sendgrid.requests + self.twilio.requests if r["accepted"]]

    def clear(self) -> None:
        for state in (self.sendgrid, self.twilio):
            state.requests.clear()
            state.messages.clear()
            state.reset_faults()


@asynccontextmanager
async def fake_providers() -> AsyncIterator[FakeProviders]:
    sg_state, tw_state = FakeState(), FakeState()
    tw = twilio_app(state=tw_state)
    runners = [web.AppRunner(sendgrid_app(state=sg_state)), web.AppRunner(tw)]
    urls = []
    for runner in runners:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        urls.append(f"http://127.0.0.1:{port}")
    try:
        yield FakeProviders(urls[0], urls[1], sg_state, tw_state, tw)
    finally:
        for runner in runners:
            await runner.cleanup()


def real_senders(
    providers: FakeProviders,
    executor: ThreadPoolExecutor,
    *,
    timeout: float = 2.0,
    reconcile: str = "activity",
    messaging_service: str | None = None,
) -> tuple[SendGridSender, TwilioSender]:
    email = SendGridSender(
        api_key="SG.test-key",
        base_url=providers.sendgrid_url,
        timeout=timeout,
        executor=executor,
        reconcile=reconcile,
        settle_seconds=0.0,
    )
    sms = TwilioSender(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        base_url=providers.twilio_url,
        from_number=None if messaging_service else "+12025550199",
        messaging_service_sid=messaging_service,
        status_callback="http://localhost:3000/webhooks/twilio/status",
        timeout=timeout,
    )
    return email, sms


Factory = Callable[..., Harness]
