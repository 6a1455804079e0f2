"""Handle one touch-point command: claim it in the ledger, pass it through the safety gate,
send it (or record, skip, defer it), record the outcome, publish it. A send retried after a
provider outage passes the gate again first, with fresh facts (suppressions, the lead's
opt-out) at that moment's time (the send window), and is rendered anew.

The consumer calls `handle` for every record; the property test and the benchmark call the very
same object. The claim comes before any provider call; a command the ledger already holds is
never sent again (its stored outcome is re-published with duplicate=true), except a claim left
by a dead process, which is reconciled with the provider first (`takeover.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.base import Channel, utcnow
from schemas.events import TouchPointCommand, TouchPointOutcome
from services.common.domain import hops
from services.common.domain.consent import ConsentRecord
from services.common.domain.send_windows import window_end
from services.outbound.adapters import metrics
from services.outbound.domain.model import (
    AlreadyClaimed,
    GateFacts,
    LedgerStatus,
    OutboundMessage,
    SmsMessage,
    TenantProfile,
)
from services.outbound.domain.safety_gate import (
    Decision,
    GateInput,
    Verdict,
    contact_for,
    decide,
    gate_view,
    opted_out,
    other_contact_for,
)
from services.outbound.errors import TemplateError, UnsendableCommand
from services.outbound.ports import Ledger, OutcomePublisher, Renderer, Sender, TenantDirectory
from services.outbound.service_layer.decision_log import log_decision
from services.outbound.service_layer.delivery import (
    Accepted,
    Clock,
    Delivery,
    Rejected,
    Sleep,
    Withdrawn,
    retrying_infra,
)
from services.outbound.service_layer.outcomes import Outcomes
from services.outbound.service_layer.takeover import ClaimTakeover, gate_facts

log = logging.getLogger("services.outbound")


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    whitelist: frozenset[str]
    email_configured: bool
    sms_configured: bool
    frequency_caps: dict[Channel, int]
    frequency_window: timedelta = timedelta(hours=24)
    claim_stale: timedelta = timedelta(seconds=60)
    sms_validity_max: int = 3600
    #: OUTBOUND_REPLAY_SEND: a record_only command the gate allows is sent (default: recorded).
    replay_send: bool = False
    #: LEAD_PHONE_WHITELIST (E.164; empty: no SMS) and SMS_ALLOWED_REGIONS.
    phone_whitelist: frozenset[str] = frozenset()
    sms_regions: frozenset[str] = frozenset({"US", "CA"})
    #: CAMPAIGN_CAP: one campaign's messages a day per customer.
    campaign_cap: bool = True


class TouchPointHandler:
    def __init__(
        self,
        *,
        config: HandlerConfig,
        ledger: Ledger,
        tenants: TenantDirectory,
        renderer: Renderer,
        senders: dict[Channel, Sender],
        publisher: OutcomePublisher,
        delivery: Delivery,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._cfg = config
        self._ledger = ledger
        self._tenants = tenants
        self._renderer = renderer
        self._senders = senders
        self._delivery = delivery
        self._clock = clock
        self._sleep = sleep
        self._outcomes = Outcomes(ledger=ledger, publisher=publisher, clock=clock, sleep=sleep)
        self._takeover = ClaimTakeover(
            ledger=ledger,
            renderer=renderer,
            senders=senders,
            delivery=delivery,
            outcomes=self._outcomes,
            stale_after=config.claim_stale,
            frequency_window=config.frequency_window,
            replay_send=config.replay_send,
            clock=clock,
            sleep=sleep,
        )

    async def handle(self, command: TouchPointCommand) -> TouchPointOutcome:
        """Decide and act on one command; returns the outcome it published. Raises
        UnsendableCommand, after its `failed` outcome is published, for a command that can
        never be sent (the consumer dead-letters it)."""
        now = self._clock()
        contact = contact_for(command.channel, command.recipient.email, command.recipient.phone)
        tenant = await retrying_infra(
            "tenants.get", lambda: self._tenants.get(command.tenant_id), sleep=self._sleep
        )
        claim = await retrying_infra(
            "ledger.claim",
            lambda: self._ledger.claim(
                command,
                recipient=contact,
                now=now,
                cap_since=now - self._cfg.frequency_window,
                other_contact=other_contact_for(
                    command.channel, command.recipient.email, command.recipient.phone
                ),
            ),
            sleep=self._sleep,
        )
        if not isinstance(claim, AlreadyClaimed):
            hops.stamp(hops.OUTBOUND_CLAIMED)  # a traced first message: when it was claimed
            return await self._decide_and_act(command, tenant, claim.facts, claimed_at=now)
        if claim.row.status is not LedgerStatus.CLAIMED:
            return await self._outcomes.duplicate(command, claim.row)
        resolved = await self._takeover.resolve(command, claim.row, contact)
        if isinstance(resolved, TouchPointOutcome):
            return resolved
        return await self._decide_and_act(command, tenant, resolved)

    async def _decide_and_act(
        self,
        command: TouchPointCommand,
        tenant: TenantProfile | None,
        facts: GateFacts,
        *,
        claimed_at: datetime | None = None,
    ) -> TouchPointOutcome:
        decision = self._gate(command, tenant, facts)
        log_decision(command, decision, replay_send=self._cfg.replay_send)
        if decision.verdict is not Verdict.SEND:
            return await self._not_sent(command, decision, facts.consent)
        if command.record_only and not self._cfg.replay_send:
            return await self._outcomes.finish(
                command, LedgerStatus.RECORDED, "record_only", consent=facts.consent
            )
        assert tenant is not None  # the gate never lets an unknown tenant through
        return await self._send(
            command, tenant, claimed_at, approved=decision.recipient, consent=facts.consent
        )

    def _gate(
        self, command: TouchPointCommand, tenant: TenantProfile | None, facts: GateFacts
    ) -> Decision:
        """The safety gate on this command, its tenant and the recipient's facts, now."""
        return decide(
            GateInput(
                channel=command.channel,
                email=command.recipient.email,
                phone=command.recipient.phone,
                whitelist=self._cfg.whitelist,
                email_configured=self._cfg.email_configured,
                sms_configured=self._cfg.sms_configured,
                tenant=gate_view(tenant),
                now=self._clock(),
                suppressed=facts.suppressed,
                recent_sends=facts.recent_sends,
                frequency_cap=self._cfg.frequency_caps.get(command.channel, 1),
                opted_out=opted_out(command.channel, command.context) or facts.lead_opted_out,
                phone_whitelist=self._cfg.phone_whitelist,
                sms_regions=self._cfg.sms_regions,
                consent=facts.consent,
                other_consent=facts.other_consent,
                other_campaign_today=facts.other_campaign_today and self._cfg.campaign_cap,
                review_recent=facts.review_recent,
                campaign_step=command.campaign is not None,
                frequency_window=self._cfg.frequency_window,
            )
        )

    async def _not_sent(
        self, command: TouchPointCommand, decision: Decision, consent: ConsentRecord | None
    ) -> TouchPointOutcome:
        finish = functools.partial(self._outcomes.finish, consent=consent)
        if decision.verdict is Verdict.DEFER:
            return await finish(
                command,
                LedgerStatus.DEFERRED,
                decision.reason,
                deferred_until=decision.deferred_until,
            )
        return await finish(command, LedgerStatus.SKIPPED, decision.reason)

    def _render(
        self, command: TouchPointCommand, tenant: TenantProfile, approved: str | None
    ) -> OutboundMessage:
        """The message as it goes out now; an SMS carries the number the gate approved (the
        sender checks `to` against it again)."""
        message = self._renderer.render(
            command, tenant, now=self._clock(), validity_seconds=self._validity(tenant)
        )
        if isinstance(message, SmsMessage):
            message = dataclasses.replace(message, approved_to=approved)
        return message

    async def _regate(self, command: TouchPointCommand) -> OutboundMessage | Withdrawn:
        """Before a retry: the gate again on fresh facts, and the message rendered anew."""
        tenant = await retrying_infra(
            "tenants.get", lambda: self._tenants.get(command.tenant_id), sleep=self._sleep
        )
        contact = contact_for(command.channel, command.recipient.email, command.recipient.phone)
        since = self._clock() - self._cfg.frequency_window
        facts = await gate_facts(self._ledger, command, contact, since=since, sleep=self._sleep)
        decision = self._gate(command, tenant, facts)
        if decision.verdict is not Verdict.SEND:
            log_decision(command, decision, replay_send=self._cfg.replay_send)
            return Withdrawn(decision, facts.consent)
        assert tenant is not None
        return self._render(command, tenant, decision.recipient)

    async def _send(
        self,
        command: TouchPointCommand,
        tenant: TenantProfile,
        claimed_at: datetime | None,
        *,
        approved: str | None,
        consent: ConsentRecord | None,
    ) -> TouchPointOutcome:
        finish = functools.partial(self._outcomes.finish, consent=consent)
        sender = self._senders.get(command.channel)
        if sender is None:  # configured per settings but not wired: fail closed
            return await finish(command, LedgerStatus.SKIPPED, f"{command.channel}_disabled")
        try:
            message = self._render(command, tenant, approved)
            result = await self._delivery.deliver(
                message, sender, claimed_at=claimed_at, refresh=lambda: self._regate(command)
            )
        except TemplateError as exc:  # never sendable: the lead learns it, the DLQ keeps it
            log.error("[TouchPoint] %s: %s", command.command_id, exc.reason)
            await finish(command, LedgerStatus.FAILED, exc.reason)
            raise UnsendableCommand(exc.reason) from exc
        if isinstance(result, Withdrawn):
            return await self._not_sent(command, result.decision, result.consent)
        if isinstance(result, Accepted):
            reason = "reconciled_sent" if result.reconciled else "accepted"
            return await finish(
                command,
                LedgerStatus.SENT,
                reason,
                provider=sender.name,
                provider_message_id=result.provider_message_id,
            )
        if isinstance(result, Rejected):
            if result.suppress:
                await retrying_infra(
                    "ledger.suppress",
                    lambda: self._ledger.suppress(
                        tenant_id=command.tenant_id,
                        channel=command.channel,
                        contact=message.recipient,
                        reason="opted_out",
                        source=sender.name,
                    ),
                    sleep=self._sleep,
                )
            log.warning("[TouchPoint] %s rejected: %s", sender.name, result.reason)
            return await finish(command, LedgerStatus.FAILED, result.reason, provider=sender.name)
        metrics.UNKNOWN.labels(command.channel.value, result.reason.split(":")[0]).inc()
        log.error(
            "[TouchPoint] could not establish whether %s sent command %s (%s): marked unknown",
            sender.name,
            command.command_id,
            result.reason,
        )
        return await finish(command, LedgerStatus.UNKNOWN, result.reason, provider=sender.name)

    def _validity(self, tenant: TenantProfile) -> int:
        """SMS ValidityPeriod: until the window closes, at most the configured cap."""
        now = self._clock()
        end = window_end(Channel.SMS, now, tenant.policy)
        if end is None:
            return 60
        return max(1, min(self._cfg.sms_validity_max, int((end - now).total_seconds())))
