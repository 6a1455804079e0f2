"""At-least-once consumer over confluent-kafka: an offset is stored only after its record was
processed (or dead-lettered), and the background auto-commit commits only stored offsets."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from services.common.errors import ContractError, InfrastructureError
from services.common.kafka.config import consumer_config
from services.common.kafka.connection import KafkaTarget
from services.common.kafka.dlq import DeadLetter, DeadLetters

log = logging.getLogger(__name__)


class AtLeastOnceConsumer:
    def __init__(
        self,
        kafka: KafkaTarget,
        *,
        group_id: str,
        topics: Iterable[str],
        client_id: str,
        **overrides: Any,
    ) -> None:
        self._consumer = Consumer(
            consumer_config(kafka, group_id=group_id, client_id=client_id) | overrides
        )
        self._topics = list(topics)
        self._consumer.subscribe(self._topics, on_assign=_resume_assigned)

    @property
    def raw(self) -> Consumer:
        return self._consumer

    def poll_batch(self, max_records: int = 100, timeout: float = 0.5) -> list[Message]:
        """Records ready now, at most `max_records`; when none is, waits up to `timeout` for
        the first and returns it at once with whatever came along (possibly none). Broker
        errors other than EOF raise.

        librdkafka's `consume(n, timeout)` returns only once it has `n` records or `timeout`
        passed: at low load every record waited the whole timeout for a batch that never
        filled. Here a batch is what is queued locally when the loop asks (under load, many).
        """
        consumer = self._consumer
        messages = consumer.consume(num_messages=max_records, timeout=0)
        if not messages:
            first = consumer.poll(timeout)  # returns as soon as one record (or event) is ready
            if first is None:
                return []
            more = consumer.consume(max_records - 1, timeout=0) if max_records > 1 else []
            messages = [first, *more]
        ready = []
        for msg in messages:
            err = msg.error()
            if err is None:
                ready.append(msg)
            elif err.code() == KafkaError._PARTITION_EOF:
                continue
            elif err.fatal():
                raise InfrastructureError(f"consumer fatal error: {err.str()}")
            else:
                log.warning("consumer error (will retry): %s", err.str())
        return ready

    def store(self, msg: Message) -> None:
        """Mark `msg` processed: its offset + 1 will be committed."""
        self._consumer.store_offsets(message=msg)

    def commit(self) -> None:
        """Commit stored offsets now (normally auto-commit does it every second)."""
        try:
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def assignment(self) -> list[TopicPartition]:
        return list(self._consumer.assignment())

    def close(self) -> None:
        """Commit what was stored and leave the group."""
        try:
            self.commit()
        finally:
            self._consumer.close()


def _resume_assigned(consumer: Consumer, partitions: list[TopicPartition]) -> None:
    """A partition comes back from a rebalance unpaused. librdkafka keeps a partition's pause
    across a rebalance that hands it to the same member again: a consumer that paused its
    partitions while a batch was blocked (outbound during an outage) and lost them meanwhile
    (its group session timed out when the coordinator's broker died) got them back paused and
    never read again. A pause belongs to the assignment it was made in; whoever still needs
    it pauses again."""
    consumer.resume(partitions)


Handler = Callable[[Message], None]


def process(msg: Message, handler: Handler, dead_letters: DeadLetters) -> None:
    """Run `handler`; a `ContractError` dead-letters the record so the stream keeps moving.

    Any other exception propagates: the offset stays unstored and the record is re-read after a
    restart (at-least-once); never swallowed here.
    """
    try:
        handler(msg)
    except ContractError as exc:
        dead_letters.publish(DeadLetter.of(msg, str(exc)))


def run(
    consumer: AtLeastOnceConsumer,
    handler: Handler,
    dead_letters: DeadLetters,
    stop: threading.Event,
    *,
    batch: int = 100,
) -> None:
    """The consume loop: poll, process each record, store its offset; until `stop` is set."""
    while not stop.is_set():
        for msg in consumer.poll_batch(batch):
            process(msg, handler, dead_letters)
            consumer.store(msg)
