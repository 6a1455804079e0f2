"""A command the ledger shows as claimed by another process: wait for that process's outcome,
or, once the claim is stale (its owner died), take it over and reconcile with the provider
before the command may be decided, and sent, again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from schemas.base import Channel, utcnow
from schemas.events import TouchPointCommand, TouchPointOutcome
from services.outbound.adapters import metrics
from services.outbound.domain.model import (
    Found,
    GateFacts,
    LedgerRow,
    LedgerStatus,
    NotFound,
    Probe,
)
from services.outbound.domain.safety_gate import other_contact_for
from services.outbound.ports import Ledger, Renderer, Sender
from services.outbound.service_layer.delivery import Clock, Delivery, Sleep, retrying_infra
from services.outbound.service_layer.outcomes import Outcomes

log = logging.getLogger("services.outbound")

#: How far before a command's issue (or due) time crash reconciliation looks (clock skew,
#: queueing).
CRASH_LOOKUP_MARGIN = timedelta(minutes=10)


async def gate_facts(
    ledger: Ledger,
    command: TouchPointCommand,
    recipient: str | None,
    *,
    since: datetime,
    sleep: Sleep,
) -> GateFacts:
    """The recipient's gate facts as the ledger has them now (recent sends since `since`)."""
    return await retrying_infra(
        "ledger.facts",
        lambda: ledger.facts(
            command_id=command.command_id,
            tenant_id=command.tenant_id,
            lead_id=command.lead_id,
            channel=command.channel,
            recipient=recipient,
            cap_since=since,
            other_contact=other_contact_for(
                command.channel, command.recipient.email, command.recipient.phone
            ),
            campaign=command.campaign,
        ),
        sleep=sleep,
    )


class ClaimTakeover:
    def __init__(
        self,
        *,
        ledger: Ledger,
        renderer: Renderer,
        senders: dict[Channel, Sender],
        delivery: Delivery,
        outcomes: Outcomes,
        stale_after: timedelta,
        frequency_window: timedelta,
        replay_send: bool,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ledger = ledger
        self._renderer = renderer
        self._senders = senders
        self._delivery = delivery
        self._outcomes = outcomes
        self._stale = stale_after
        self._window = frequency_window
        self._replay_send = replay_send
        self._clock = clock
        self._sleep = sleep

    async def resolve(
        self, command: TouchPointCommand, row: LedgerRow, contact: str | None
    ) -> TouchPointOutcome | GateFacts:
        """The outcome once the command is decided (by its owner, or by reconciliation); else
        the claim is ours, the provider holds nothing, and the recipient's gate facts are
        returned for deciding it afresh."""
        while True:
            age = self._clock() - row.claimed_at
            if age >= self._stale:
                if await self._take_over(command, row.claimed_at):
                    break
            else:
                await self._sleep(min(1.0, (self._stale - age).total_seconds()))
            fresh = await retrying_infra(
                "ledger.get", lambda: self._ledger.get(command.command_id), sleep=self._sleep
            )
            if fresh is None:  # cannot happen (rows are never deleted); fail closed
                raise RuntimeError(f"ledger row of {command.command_id} vanished")
            if fresh.status is not LedgerStatus.CLAIMED:
                return await self._outcomes.duplicate(command, fresh)
            row = fresh
        log.warning(
            "[TouchPoint] command %s was left claimed by a dead process: reconciling",
            command.command_id,
        )
        sender = self._senders.get(command.channel)
        may_have_sent = self._replay_send or not (row.record_only or command.record_only)
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
                return await self._outcomes.finish(
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
                return await self._outcomes.finish(
                    command, LedgerStatus.UNKNOWN, f"crash_{found.reason}", provider=sender.name
                )
        return await gate_facts(
            self._ledger, command, contact, since=self._clock() - self._window, sleep=self._sleep
        )

    async def _take_over(self, command: TouchPointCommand, seen: datetime) -> bool:
        return await retrying_infra(
            "ledger.take_over",
            lambda: self._ledger.take_over(
                command.command_id, seen_claimed_at=seen, now=self._clock()
            ),
            sleep=self._sleep,
        )
