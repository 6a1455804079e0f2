"""What a decision leaves behind: the ledger row's final status, the decision metric and the
`TouchPointOutcome` on Kafka. A command the ledger already decided is answered from its row
(duplicate=true), never decided again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from schemas import bounds
from schemas.base import utcnow
from schemas.events import OutcomeStatus, TouchPointCommand, TouchPointOutcome
from services.common.domain.consent import ConsentRecord
from services.outbound.adapters import metrics
from services.outbound.domain.model import LedgerRow, LedgerStatus
from services.outbound.ports import Ledger, OutcomePublisher
from services.outbound.service_layer.delivery import Clock, Sleep, retrying_infra

log = logging.getLogger("services.outbound")

STATUS_OF = {
    LedgerStatus.SENT: OutcomeStatus.SENT,
    LedgerStatus.SKIPPED: OutcomeStatus.SKIPPED,
    LedgerStatus.DEFERRED: OutcomeStatus.DEFERRED,
    LedgerStatus.FAILED: OutcomeStatus.FAILED,
    LedgerStatus.UNKNOWN: OutcomeStatus.UNKNOWN,
    LedgerStatus.RECORDED: OutcomeStatus.RECORDED,
}


def outcome_of(
    subject: TouchPointCommand | LedgerRow,
    status: LedgerStatus,
    reason: str,
    *,
    decided_at: datetime,
    provider_message_id: str | None = None,
    deferred_until: datetime | None = None,
    duplicate: bool = False,
) -> TouchPointOutcome:
    """The outcome of a command, or of the ledger row that stands for it (texts cut to their
    contract's bounds: a provider's answer is no reason to lose the outcome)."""
    return TouchPointOutcome(
        command_id=subject.command_id,
        tenant_id=subject.tenant_id,
        lead_id=subject.lead_id,
        step_index=subject.step_index,
        channel=subject.channel,
        status=STATUS_OF[status],
        reason=reason[: bounds.DECISION_REASON],
        decided_at=decided_at,
        provider_message_id=provider_message_id[: bounds.PROVIDER_MESSAGE_ID]
        if provider_message_id
        else None,
        deferred_until=deferred_until,
        duplicate=duplicate,
        campaign=subject.campaign,
    )


class Outcomes:
    """Records decisions in the ledger and publishes their outcomes (retrying outages)."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        publisher: OutcomePublisher,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ledger = ledger
        self._publisher = publisher
        self._clock = clock
        self._sleep = sleep

    async def finish(
        self,
        command: TouchPointCommand,
        status: LedgerStatus,
        reason: str,
        *,
        provider: str | None = None,
        provider_message_id: str | None = None,
        deferred_until: datetime | None = None,
        consent: ConsentRecord | None = None,
    ) -> TouchPointOutcome:
        """Record this process's decision on its claim (with the source consent the gate read)
        and publish it."""
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
                consent=consent,
            ),
            sleep=self._sleep,
        )
        if not done:  # somebody else (the sweeper) decided it meanwhile: theirs stands
            row = await retrying_infra(
                "ledger.get", lambda: self._ledger.get(command.command_id), sleep=self._sleep
            )
            if row is not None and row.status is not LedgerStatus.CLAIMED:
                return await self.duplicate(command, row)
        return await self.announce(
            outcome_of(
                command,
                status,
                reason,
                decided_at=now,
                provider_message_id=provider_message_id,
                deferred_until=deferred_until,
            )
        )

    async def announce(self, outcome: TouchPointOutcome) -> TouchPointOutcome:
        """Count and publish a decision already recorded in the ledger."""
        metrics.record_decision(outcome.channel.value, outcome.status.value, outcome.reason)
        await self.publish(outcome)
        return outcome

    async def duplicate(self, command: TouchPointCommand, row: LedgerRow) -> TouchPointOutcome:
        """Re-publish the decision the ledger holds for `command`: nothing is done again."""
        metrics.DUPLICATES.labels(command.channel.value, row.status.value).inc()
        log.info(
            "[TouchPoint] command %s already %s: not sent again",
            command.command_id,
            row.status.value,
        )
        outcome = outcome_of(
            command,
            row.status,
            row.reason or row.status.value,
            # the original decision's time: a re-delivered or replayed command must not make
            # the lead look touched again
            decided_at=row.decided_at or row.claimed_at,
            provider_message_id=row.provider_message_id,
            deferred_until=row.deferred_until,
            duplicate=True,
        )
        await self.publish(outcome)
        return outcome

    async def publish(self, outcome: TouchPointOutcome) -> None:
        await retrying_infra(
            "outcomes.publish", lambda: self._publisher.publish(outcome), sleep=self._sleep
        )
