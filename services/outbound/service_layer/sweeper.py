"""Crash recovery: look for claims left behind by dead processes, at start and periodically.

A stale claim whose message the provider holds is marked sent (and its outcome published).
Anything else stays claimed: its command is still in Kafka (the offset is stored only after an
outcome), so it comes back to a consumer, which reconciles it with the full command and sends it
only if the provider certainly holds nothing. The count is exported (`outbound_stale_claims`)
so a claim that never comes back is visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from schemas.base import Channel, utcnow
from services.outbound.adapters import metrics
from services.outbound.domain.model import Found, LedgerRow, LedgerStatus, Probe
from services.outbound.ports import Ledger, OutcomePublisher, Sender
from services.outbound.service_layer.delivery import Clock
from services.outbound.service_layer.outcomes import Outcomes, outcome_of
from services.outbound.service_layer.takeover import CRASH_LOOKUP_MARGIN

log = logging.getLogger(__name__)


class Sweeper:
    def __init__(
        self,
        *,
        ledger: Ledger,
        senders: dict[Channel, Sender],
        publisher: OutcomePublisher,
        chat_base_url: str,
        stale_after: timedelta,
        interval: float,
        clock: Clock = utcnow,
        replay_send: bool = False,
    ) -> None:
        self._replay_send = replay_send
        self._ledger = ledger
        self._senders = senders
        self._outcomes = Outcomes(ledger=ledger, publisher=publisher, clock=clock)
        self._chat = chat_base_url.rstrip("/")
        self._stale = stale_after
        self._interval = interval
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.sweep_once()
            except Exception:  # the sweeper must never take the consumer down with it
                log.exception("stale-claim sweep failed; trying again next round")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._interval)

    async def sweep_once(self) -> int:
        """Reconcile what can be; returns how many stale claims remain."""
        rows = await self._ledger.stale_claims(older_than=self._clock() - self._stale)
        left = 0
        for row in rows:
            if not await self._resolve(row):
                left += 1
        metrics.STALE_CLAIMS.set(left)
        if left:
            log.warning("%d claim(s) left by a dead process await their command's redelivery", left)
        return left

    async def _resolve(self, row: LedgerRow) -> bool:
        sender = self._senders.get(row.channel)
        if (row.record_only and not self._replay_send) or sender is None or not row.recipient:
            return False
        probe = Probe(row.command_id, row.recipient, f"{self._chat}/{row.lead_id}")
        since = min(row.due_at or row.claimed_at, row.claimed_at) - CRASH_LOOKUP_MARGIN
        found = await sender.lookup(probe, since=since)
        if not isinstance(found, Found):
            return False
        now = self._clock()
        done = await self._ledger.finish(
            row.command_id,
            status=LedgerStatus.SENT,
            reason="reconciled_sent",
            now=now,
            provider=sender.name,
            provider_message_id=found.provider_message_id,
            only_if_claimed_at=row.claimed_at,
        )
        if not done:
            return True  # its owner or a redelivery decided it meanwhile
        log.warning("claim %s left by a crash: the provider holds it, marked sent", row.command_id)
        await self._outcomes.announce(
            outcome_of(
                row,
                LedgerStatus.SENT,
                "reconciled_sent",
                decided_at=now,
                provider_message_id=found.provider_message_id,
            )
        )
        return True
