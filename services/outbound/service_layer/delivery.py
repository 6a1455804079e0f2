"""Deliver one claimed message: pace, send, retry what was certainly not processed, reconcile
what may have been, never send blindly twice.

A provider outage blocks here (with a heartbeat on the claim, so no other process takes it
over): sending pauses, no command is dropped. Time passes meanwhile, so every attempt after
a wait asks the gate again (`refresh`): a window that closed defers the message, an opt-out
or suppression that came skips it, and what goes out is rendered anew (an SMS's validity
never reaches past the window's end).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from schemas.base import utcnow
from services.common.domain import hops
from services.common.domain.consent import ConsentRecord
from services.common.domain.pacing import TokenBucket, backoff_delay
from services.common.errors import InfrastructureError
from services.outbound.adapters import metrics
from services.outbound.domain.model import (
    Found,
    Lookup,
    NotFound,
    OutboundMessage,
    Probe,
    Unverifiable,
)
from services.outbound.domain.safety_gate import Decision
from services.outbound.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable
from services.outbound.ports import Ledger, Sender

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Provider clocks may differ from ours: look this far before an attempt when reconciling.
LOOKUP_MARGIN = timedelta(minutes=5)

Clock = Callable[[], datetime]
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Accepted:
    """The provider took the message (`reconciled`: found there after an ambiguous attempt)."""

    provider_message_id: str
    reconciled: bool = False


@dataclass(frozen=True, slots=True)
class Rejected:
    """The provider refused the message for good (`suppress`: the contact opted out)."""

    reason: str
    suppress: bool = False


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Whether the provider took the message cannot be established."""

    reason: str


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """Asked again before a later attempt, the gate no longer sends (skip or defer), on the
    source consent it read then."""

    decision: Decision
    consent: ConsentRecord | None = None


DeliveryResult = Accepted | Rejected | Unresolved | Withdrawn

#: The gate asked again and the message rendered anew, or why it must not go out any more.
Refresh = Callable[[], Awaitable[OutboundMessage | Withdrawn]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff of provider retries, and how often a waiting claim's heartbeat is refreshed."""

    base: float = 0.5
    cap: float = 60.0
    heartbeat_every: float = 10.0


async def retrying_infra(
    operation: str, call: Callable[[], Awaitable[T]], *, sleep: Sleep = asyncio.sleep
) -> T:
    """Run a PostgreSQL/Kafka operation until it succeeds: an outage pauses, never drops."""
    attempt = 0
    while True:
        try:
            return await call()
        except InfrastructureError as exc:
            metrics.INFRA_RETRIES.labels(operation).inc()
            delay = backoff_delay(attempt, base=0.5, cap=30.0)
            log.warning("%s failed (%s); retrying in %.1f s", operation, exc, delay)
            await sleep(delay)
            attempt += 1


class Pacer:
    """One token bucket per sender identity (Twilio long code, SendGrid key)."""

    def __init__(
        self,
        rates: dict[str, tuple[float, int]],
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._rates = rates
        self._buckets: dict[str, TokenBucket] = {}
        self._monotonic = monotonic

    def wait_for(self, provider: str, key: str) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            rate, burst = self._rates.get(provider, (1_000_000.0, 1_000_000))
            bucket = self._buckets[key] = TokenBucket(rate, burst)
        return bucket.reserve(self._monotonic())


class Delivery:
    """Sends a claimed message through its provider: pacing, retries, reconciliation."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        pacer: Pacer,
        policy: RetryPolicy,
        clock: Clock = utcnow,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._ledger = ledger
        self._pacer = pacer
        self._policy = policy
        self._clock = clock
        self._sleep = sleep

    async def wait(self, command_id: uuid.UUID, seconds: float) -> None:
        """Sleep, refreshing the claim's heartbeat so it never looks abandoned."""
        remaining = seconds
        while remaining > 0:
            step = min(remaining, self._policy.heartbeat_every)
            await self._sleep(step)
            remaining -= step
            if remaining > 0:
                await self._heartbeat(command_id)

    async def _heartbeat(self, command_id: uuid.UUID) -> None:
        await retrying_infra(
            "ledger.heartbeat",
            lambda: self._ledger.heartbeat(command_id, now=self._clock()),
            sleep=self._sleep,
        )

    async def deliver(
        self,
        message: OutboundMessage,
        sender: Sender,
        *,
        claimed_at: datetime | None = None,
        refresh: Refresh | None = None,
    ) -> DeliveryResult:
        """`claimed_at`: when the claim was last refreshed (the claim itself); the heartbeat
        before an attempt is skipped while it is that recent, which saves a round trip per send
        and stays safe: an attempt plus its timeout ends long before a claim can look stale.

        `refresh`: asked before every attempt that follows a wait (pacing, backoff after an
        outage, a reconciliation that found nothing); the first attempt goes out on the
        decision just made."""
        cid = message.command_id
        attempt = 0
        last_beat = claimed_at
        while True:
            pause = self._pacer.wait_for(sender.name, sender.pacing_key)
            if pause > 0:
                await self.wait(cid, pause)
                last_beat = None
            if refresh is not None and (attempt > 0 or pause > 0):
                fresh = await refresh()
                if isinstance(fresh, Withdrawn):
                    log.info(
                        "%s retry withdrawn by the gate: %s (%s)",
                        sender.name,
                        fresh.decision.verdict.value,
                        fresh.decision.reason,
                        extra={"command_id": cid},
                    )
                    return fresh
                message = fresh
            beat_age = None if last_beat is None else (self._clock() - last_beat).total_seconds()
            if beat_age is None or beat_age >= self._policy.heartbeat_every:
                await self._heartbeat(cid)
                last_beat = self._clock()
            attempted_at = self._clock()
            try:
                accepted = Accepted(await sender.send(message))
                hops.stamp(hops.PROVIDER_ANSWERED)
                return accepted
            except ProviderRejected as exc:
                return Rejected(exc.reason, exc.suppress)
            except ProviderUnavailable as exc:
                metrics.PROVIDER_RETRIES.labels(sender.name, "unavailable").inc()
                delay = backoff_delay(
                    attempt,
                    base=self._policy.base,
                    cap=self._policy.cap,
                    retry_after=exc.retry_after,
                )
                log.warning(
                    "%s not processed (%s); retry %d in %.2f s",
                    sender.name,
                    exc.reason,
                    attempt + 1,
                    delay,
                    extra={"command_id": cid},
                )
            except ProviderAmbiguous as exc:
                metrics.PROVIDER_RETRIES.labels(sender.name, "ambiguous").inc()
                log.warning(
                    "%s may have processed the send (%s): reconciling before anything else",
                    sender.name,
                    exc.reason,
                    extra={"command_id": cid},
                )
                found = await self.reconcile(
                    Probe.of(message), sender, attempted_at=attempted_at, cid=cid
                )
                if isinstance(found, Found):
                    return Accepted(found.provider_message_id, reconciled=True)
                if isinstance(found, Unverifiable):
                    return Unresolved(f"ambiguous_{exc.reason}: {found.reason}")
                delay = backoff_delay(attempt, base=self._policy.base, cap=self._policy.cap)
                log.info("%s holds no such message: sending again", sender.name)
            await self.wait(cid, delay)
            last_beat = None
            attempt += 1

    async def reconcile(
        self,
        probe: Probe,
        sender: Sender,
        *,
        attempted_at: datetime,
        cid: uuid.UUID,
        since: datetime | None = None,
    ) -> Lookup:
        """Ask the provider once its answer can be trusted; retry while it cannot answer."""
        since = since or attempted_at - LOOKUP_MARGIN
        tries = 0
        while True:
            settle = sender.lookup_settle_seconds - (self._clock() - attempted_at).total_seconds()
            if settle > 0:
                await self.wait(cid, settle)
            result = await sender.lookup(probe, since=since)
            if isinstance(result, Found | NotFound) or not result.retry_later:
                return result
            delay = backoff_delay(tries, base=self._policy.base, cap=self._policy.cap)
            log.warning("%s lookup failed (%s); again in %.1f s", sender.name, result.reason, delay)
            await self.wait(cid, delay)
            tries += 1
