"""Handle one touch-point command: claim it in the ledger, pass it through the safety gate,
send it (or record, skip, defer it), record the outcome, publish it.

The consumer calls `handle` for every record; the property test and the benchmark call the very
same object. The claim comes before any provider call; a command the ledger already holds is
never sent again (its stored outcome is re-published with duplicate=true), except a claim left
by a dead process, which is reconciled with the provider first.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.base import Channel, utcnow
from schemas.events import OutcomeStatus, TouchPointCommand, TouchPointOutcome
from services.common.domain.send_windows import window_end
from services.common.masking import mask_email
from services.common.whitelist import normalize_email
from services.outbound.adapters import metrics
from services.outbound.domain.model import (
    AlreadyClaimed,
    Found,
    GateFacts,
    LedgerRow,
    LedgerStatus,
    NotFound,
    Probe,
    TenantProfile,
)
from services.outbound.domain.safety_gate import (
    Decision,
    GateInput,
    TenantGateView,
    Verdict,
    contact_for,
    decide,
)
from services.outbound.errors import TemplateError
from services.outbound.ports import Ledger, OutcomePublisher, Renderer, Sender, TenantDirectory
from services.outbound.service_layer.delivery import (
    Clock,
    Delivered,
    Delivery,
    Rejected,
    Sleep,
    retrying_infra,
)

log = logging.getLogger("services.outbound")

#: How far before a command's issue time reconciliation looks (clock skew, queueing).
CRASH_LOOKUP_MARGIN = timedelta(minutes=10)
STATUS_OF = {
    LedgerStatus.SENT: OutcomeStatus.SENT,
    LedgerStatus.SKIPPED: OutcomeStatus.SKIPPED,
    LedgerStatus.DEFERRED: OutcomeStatus.DEFERRED,
    LedgerStatus.FAILED: OutcomeStatus.FAILED,
    LedgerStatus.UNKNOWN: OutcomeStatus.UNKNOWN,
    LedgerStatus.RECORDED: OutcomeStatus.RECORDED,
}


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


def gate_view(tenant: TenantProfile | None) -> TenantGateView | None:
    if tenant is None:
        return None
    return TenantGateView(
        active=tenant.active, policy=tenant.policy, has_postal_address=bool(tenant.postal_address)
    )


def _opted_out(command: TouchPointCommand) -> bool:
    ctx = command.context
    key = "email_opted_out" if command.channel is Channel.EMAIL else "sms_opted_out"
    return ctx.get("opted_out") is True or ctx.get(key) is True


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
        self._publisher = publisher
        self._delivery = delivery
        self._clock = clock
        self._sleep = sleep

    # entry point -----------------------------------------------------------------------------
    async def handle(self, command: TouchPointCommand) -> TouchPointOutcome:
        """Decide and act on one command; returns the outcome it published."""
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
            ),
            sleep=self._sleep,
        )
        if isinstance(claim, AlreadyClaimed):
            if claim.row.status is LedgerStatus.CLAIMED:
                return await self._resolve_claimed(command, claim.row, tenant, contact)
            return await self._duplicate(command, claim.row)
        return await self._decide_and_act(command, tenant, claim.facts, claimed_at=now)

    # first decision --------------------------------------------------------------------------
    async def _decide_and_act(
        self,
        command: TouchPointCommand,
        tenant: TenantProfile | None,
        facts: GateFacts,
        *,
        claimed_at: datetime | None = None,
    ) -> TouchPointOutcome:
        now = self._clock()
        decision = decide(
            GateInput(
                channel=command.channel,
                email=command.recipient.email,
                phone=command.recipient.phone,
                whitelist=self._cfg.whitelist,
                email_configured=self._cfg.email_configured,
                sms_configured=self._cfg.sms_configured,
                tenant=gate_view(tenant),
                now=now,
                suppressed=facts.suppressed,
                recent_sends=facts.recent_sends,
                frequency_cap=self._cfg.frequency_caps.get(command.channel, 1),
                opted_out=_opted_out(command),
            )
        )
        self._log_decision(command, decision)
        if decision.verdict is Verdict.SKIP:
            return await self._finish(command, LedgerStatus.SKIPPED, decision.reason)
        if decision.verdict is Verdict.DEFER:
            return await self._finish(
                command,
                LedgerStatus.DEFERRED,
                decision.reason,
                deferred_until=decision.deferred_until,
            )
        if command.record_only and not self._cfg.replay_send:
            return await self._finish(command, LedgerStatus.RECORDED, "record_only")
        assert tenant is not None  # the gate never lets an unknown tenant through
        return await self._send(command, tenant, claimed_at)

    async def _send(
        self, command: TouchPointCommand, tenant: TenantProfile, claimed_at: datetime | None
    ) -> TouchPointOutcome:
        sender = self._senders.get(command.channel)
        if sender is None:  # configured per settings but not wired: fail closed
            return await self._finish(command, LedgerStatus.SKIPPED, f"{command.channel}_disabled")
        try:
            message = self._renderer.render(
                command, tenant, now=self._clock(), validity_seconds=self._validity(tenant)
            )
        except TemplateError as exc:
            log.error("[TouchPoint] %s: %s", command.command_id, exc.reason)
            return await self._finish(command, LedgerStatus.FAILED, exc.reason)
        result = await self._delivery.deliver(message, sender, claimed_at=claimed_at)
        if isinstance(result, Delivered):
            reason = "reconciled_sent" if result.reconciled else "accepted"
            return await self._finish(
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
            return await self._finish(
                command, LedgerStatus.FAILED, result.reason, provider=sender.name
            )
        metrics.UNKNOWN.labels(command.channel.value, result.reason.split(":")[0]).inc()
        log.error(
            "[TouchPoint] could not establish whether %s sent command %s (%s): marked unknown",
            sender.name,
            command.command_id,
            result.reason,
        )
        return await self._finish(
            command, LedgerStatus.UNKNOWN, result.reason, provider=sender.name
        )

    def _validity(self, tenant: TenantProfile) -> int:
        """SMS ValidityPeriod: until the window closes, at most the configured cap."""
        now = self._clock()
        end = window_end(Channel.SMS, now, tenant.policy)
        if end is None:
            return 60
        return max(1, min(self._cfg.sms_validity_max, int((end - now).total_seconds())))

    # claims left by others -------------------------------------------------------------------
    async def _resolve_claimed(
        self,
        command: TouchPointCommand,
        row: LedgerRow,
        tenant: TenantProfile | None,
        contact: str | None,
    ) -> TouchPointOutcome:
        """Another process holds (or held) the claim: wait for its outcome, or, once the claim
        is stale (its owner died), take it over and reconcile with the provider."""
        while True:
            age = self._clock() - row.claimed_at
            if age >= self._cfg.claim_stale:
                if await self._take_over(command.command_id, row.claimed_at):
                    break
            else:
                await self._sleep(min(1.0, (self._cfg.claim_stale - age).total_seconds()))
            fresh = await retrying_infra(
                "ledger.get", lambda: self._ledger.get(command.command_id), sleep=self._sleep
            )
            if fresh is None:  # cannot happen (rows are never deleted); fail closed
                raise RuntimeError(f"ledger row of {command.command_id} vanished")
            if fresh.status is not LedgerStatus.CLAIMED:
                return await self._duplicate(command, fresh)
            row = fresh
        log.warning(
            "[TouchPoint] command %s was left claimed by a dead process: reconciling",
            command.command_id,
        )
        sender = self._senders.get(command.channel)
        may_have_sent = self._cfg.replay_send or not (row.record_only or command.record_only)
        if may_have_sent and sender is not None and contact:
            probe = Probe(command.command_id, contact, self._renderer.chat_link(command))
            found = await self._delivery.reconcile(
                probe,
                sender,
                attempted_at=row.claimed_at,
                cid=command.command_id,
                since=min(command.issued_at, row.claimed_at) - CRASH_LOOKUP_MARGIN,
            )
            if isinstance(found, Found):
                return await self._finish(
                    command,
                    LedgerStatus.SENT,
                    "reconciled_sent",
                    provider=sender.name,
                    provider_message_id=found.provider_message_id,
                )
            if not isinstance(found, NotFound):
                metrics.UNKNOWN.labels(command.channel.value, "crash_unverifiable").inc()
                log.error(
                    "[TouchPoint] cannot tell whether command %s was sent before a crash (%s): "
                    "marked unknown",
                    command.command_id,
                    found.reason,
                )
                return await self._finish(
                    command, LedgerStatus.UNKNOWN, f"crash_{found.reason}", provider=sender.name
                )
        now = self._clock()
        facts = await retrying_infra(
            "ledger.facts",
            lambda: self._ledger.facts(
                command_id=command.command_id,
                tenant_id=command.tenant_id,
                channel=command.channel,
                recipient=contact,
                cap_since=now - self._cfg.frequency_window,
            ),
            sleep=self._sleep,
        )
        return await self._decide_and_act(command, tenant, facts)

    async def _take_over(self, command_id: uuid.UUID, seen: datetime) -> bool:
        return await retrying_infra(
            "ledger.take_over",
            lambda: self._ledger.take_over(command_id, seen_claimed_at=seen, now=self._clock()),
            sleep=self._sleep,
        )

    # outcomes --------------------------------------------------------------------------------
    async def _finish(
        self,
        command: TouchPointCommand,
        status: LedgerStatus,
        reason: str,
        *,
        provider: str | None = None,
        provider_message_id: str | None = None,
        deferred_until: datetime | None = None,
    ) -> TouchPointOutcome:
        now = self._clock()
        done = await retrying_infra(
            "ledger.finish",
            lambda: self._ledger.finish(
                command.command_id,
                status=status,
                reason=reason,
                now=now,
                provider=provider,
                provider_message_id=provider_message_id,
                deferred_until=deferred_until,
            ),
            sleep=self._sleep,
        )
        if not done:  # somebody else (the sweeper) decided it meanwhile: theirs stands
            row = await retrying_infra(
                "ledger.get", lambda: self._ledger.get(command.command_id), sleep=self._sleep
            )
            if row is not None and row.status is not LedgerStatus.CLAIMED:
                return await self._duplicate(command, row)
        metrics.record_decision(command.channel.value, STATUS_OF[status].value, reason)
        outcome = TouchPointOutcome(
            command_id=command.command_id,
            tenant_id=command.tenant_id,
            lead_id=command.lead_id,
            step_index=command.step_index,
            channel=command.channel,
            status=STATUS_OF[status],
            reason=reason,
            decided_at=now,
            provider_message_id=provider_message_id,
            deferred_until=deferred_until,
        )
        await self._publish(outcome)
        return outcome

    async def _duplicate(self, command: TouchPointCommand, row: LedgerRow) -> TouchPointOutcome:
        metrics.DUPLICATES.labels(command.channel.value, row.status.value).inc()
        log.info(
            "[TouchPoint] command %s already %s: not sent again",
            command.command_id,
            row.status.value,
        )
        outcome = TouchPointOutcome(
            command_id=command.command_id,
            tenant_id=command.tenant_id,
            lead_id=command.lead_id,
            step_index=command.step_index,
            channel=command.channel,
            status=STATUS_OF[row.status],
            reason=row.reason or row.status.value,
            # the original decision's time: a re-delivered or replayed command must not make
            # the lead look touched again
            decided_at=row.decided_at or row.claimed_at,
            provider_message_id=row.provider_message_id,
            deferred_until=row.deferred_until,
            duplicate=True,
        )
        await self._publish(outcome)
        return outcome

    async def _publish(self, outcome: TouchPointOutcome) -> None:
        await retrying_infra(
            "outcomes.publish", lambda: self._publisher.publish(outcome), sleep=self._sleep
        )

    # the seed's log lines --------------------------------------------------------------------
    def _log_decision(self, command: TouchPointCommand, decision: Decision) -> None:
        email = command.recipient.email
        ids = {
            "tenant_id": command.tenant_id,
            "lead_id": command.lead_id,
            "command_id": command.command_id,
        }
        if decision.reason == "whitelist_empty":
            log.warning(
                "LEAD_EMAIL_WHITELIST is empty; skipping all outbound (email %s)",
                mask_email(email),
                extra=ids,
            )
        elif decision.reason == "no_email":
            log.info("Lead has no email; skipping all outbound", extra=ids)
        elif decision.reason == "not_whitelisted":
            log.info(
                "Email %s NOT whitelisted; skipping all outbound", mask_email(email), extra=ids
            )
        elif decision.verdict is Verdict.SEND and command.record_only and not self._cfg.replay_send:
            # record-only replay: the gate allowed it, nothing is sent
            log.info(
                "[TouchPoint] Email %s is whitelisted → RECORDED (record-only, nothing sent)",
                _shown(email),
                extra=ids,
            )
        elif decision.verdict is Verdict.SEND:
            log.info("[TouchPoint] Email %s is whitelisted → SENDING", _shown(email), extra=ids)
        elif decision.verdict is Verdict.DEFER:
            log.info(
                "[TouchPoint] Email %s is whitelisted → %s DEFERRED until %s (send window)",
                _shown(email),
                command.channel.value,
                decision.deferred_until.isoformat() if decision.deferred_until else "?",
                extra=ids,
            )
        else:
            log.info(
                "[TouchPoint] Email %s is whitelisted → %s SKIPPED (%s)",
                _shown(email),
                command.channel.value,
                decision.reason,
                extra=ids,
            )


def _shown(email: str | None) -> str:
    """A whitelisted address is a test address: shown normalised, in full."""
    return normalize_email(email) or "<none>"
