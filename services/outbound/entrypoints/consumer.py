"""The consume loop: at-least-once over confluent-kafka.

Poison records never stop it (services.common.poison decides): a record that is no valid
command, or that fails for good (data PostgreSQL refuses, a template that cannot render), goes
to the DLQ with the reason in its headers after one try; one that fails for an unknown reason
after a few tries with backoff; a transient failure (PostgreSQL or Kafka down, a lost
connection) is retried with backoff as long as it lasts, never dead-lettered.

A batch is handled with commands of different tenants in parallel and each tenant's commands in
order (a tenant's records share one partition, and the frequency cap is per tenant). An offset
is stored only once its command's outcome is in the ledger, and only as far as every earlier
record of its partition is done too. While a batch is blocked (provider outage, pacing), the
partitions are paused and the consumer keeps polling, so it stays in its group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, KafkaException, Message

from schemas.events import TouchPointCommand
from services.common.domain import hops
from services.common.domain.pacing import backoff_delay
from services.common.errors import ContractError
from services.common.kafka.codec import decode
from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.dlq import DeadLetter, DeadLetters
from services.common.poison import Failure, classify, gives_up, reason_of
from services.outbound.adapters import metrics
from services.outbound.errors import UnsendableCommand
from services.outbound.ports import CommandHandler
from services.outbound.service_layer.delivery import Sleep, retrying_infra

log = logging.getLogger(__name__)
#: Failures that make a command poison, besides the common ones.
POISON = (UnsendableCommand,)


@dataclass(slots=True)
class _Item:
    msg: Message
    done: bool = False


def traced(msg: Message) -> hops.Trace | None:
    """The hops a command carries, plus when it was written to Kafka (None: not traced)."""
    headers = msg.headers()
    if not headers:
        return None
    trace = hops.Trace.of(headers)
    if not trace.hops:
        return None
    kind, at_ms = msg.timestamp()
    if kind != TIMESTAMP_NOT_AVAILABLE:
        trace.stamp(hops.COMMAND_IN_KAFKA, at_ms * 1000)
    return trace


class CommandConsumer:
    def __init__(
        self,
        *,
        consumer: AtLeastOnceConsumer,
        handler: CommandHandler,
        dead_letters: DeadLetters,
        concurrency: int = 32,
        batch_size: int = 200,
        keepalive_seconds: float = 5.0,
        shutdown_grace_seconds: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._sleep = sleep
        self._consumer = consumer
        self._handler = handler
        self._dlq = dead_letters
        self._concurrency = concurrency
        self._batch = batch_size
        self._keepalive = keepalive_seconds
        self._grace = shutdown_grace_seconds
        self.batches = 0

    async def run(self, stop: asyncio.Event) -> None:
        carry: list[Message] = []
        while not stop.is_set():
            msgs = carry or await asyncio.to_thread(self._consumer.poll_batch, self._batch, 0.5)
            carry = []
            if msgs:
                carry = await self.process(msgs, stop)
                self.batches += 1

    async def process(self, msgs: list[Message], stop: asyncio.Event) -> list[Message]:
        """Handle a batch; returns records fetched meanwhile (handled next, never skipped)."""
        items = [_Item(m) for m in msgs]
        groups: dict[bytes, list[_Item]] = {}
        for item in items:
            groups.setdefault(item.msg.key() or b"", []).append(item)
        gate = asyncio.Semaphore(self._concurrency)

        async def run_group(group: list[_Item]) -> None:
            for item in group:
                async with gate:
                    await self._one(item.msg)
                item.done = True

        task = asyncio.ensure_future(asyncio.gather(*(run_group(g) for g in groups.values())))
        try:
            extra = await self._wait_alive(task, stop)
        finally:
            self._store_done(items)
        return extra

    async def _one(self, msg: Message) -> None:
        try:
            command = decode(TouchPointCommand, msg.value())
        except ContractError as exc:
            await self._dead_letter(msg, reason_of(exc, Failure.POISON))
            return
        trace = traced(msg)
        tries = 0
        while True:
            try:
                with hops.tracing(trace):
                    await self._handler.handle(command)
                return
            except Exception as exc:
                tries += 1
                failure = classify(exc, POISON)
                if failure is Failure.UNKNOWN:
                    log.exception("handling command %s failed", command.command_id)
                elif failure is Failure.TRANSIENT:
                    log.warning("command %s: %s; retrying it", command.command_id, exc)
                if gives_up(failure, tries):
                    # Parked so the stream moves; a claim it left is reconciled when replayed.
                    await self._dead_letter(msg, reason_of(exc, failure))
                    return
            await self._sleep(backoff_delay(tries - 1, base=0.5, cap=30.0))

    async def _dead_letter(self, msg: Message, reason: str) -> None:
        metrics.DEAD_LETTERS.inc()
        letter = DeadLetter.of(msg, reason)
        await retrying_infra("dlq.publish", lambda: self._dlq.publish_async(letter))

    async def _wait_alive(
        self, task: asyncio.Future[list[None]], stop: asyncio.Event
    ) -> list[Message]:
        loop = asyncio.get_running_loop()
        raw = self._consumer.raw
        extra: list[Message] = []
        paused = False
        deadline: float | None = None
        while True:
            done, _ = await asyncio.wait({task}, timeout=self._keepalive if not paused else 0.2)
            if done:
                break
            if stop.is_set():
                deadline = deadline or loop.time() + self._grace
                if loop.time() >= deadline:
                    log.warning("stopping with commands in flight: they will be redelivered")
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    if paused:
                        raw.resume(raw.assignment())
                    return extra
            # Blocked (outage, pacing): keep our group membership without taking more work.
            raw.pause(raw.assignment())
            paused = True
            extra.extend(await asyncio.to_thread(self._consumer.poll_batch, 100, 0.2))
        if paused:
            raw.resume(raw.assignment())
        task.result()  # a failure here is a bug in the loop itself: let it surface
        return extra

    def _store_done(self, items: list[_Item]) -> None:
        """Store, per partition, the offset after the last record of the done prefix."""
        last: dict[tuple[str, int], Message] = {}
        blocked: set[tuple[str, int]] = set()
        for item in items:  # records of one partition arrive in offset order
            tp = (str(item.msg.topic()), int(item.msg.partition() or 0))
            if tp in blocked:
                continue
            if item.done:
                last[tp] = item.msg
            else:
                blocked.add(tp)
        for msg in last.values():
            try:
                self._consumer.store(msg)
            except KafkaException as exc:  # partition revoked meanwhile: its new owner re-reads
                log.info("offset of %s[%s] not stored: %s", msg.topic(), msg.partition(), exc)
