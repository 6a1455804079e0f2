"""Dead-letter records: the raw record, unchanged, on `<topic>.dlq` with the reason in headers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import Message

from schemas.base import utcnow
from schemas.events import dlq_topic
from services.common.kafka.delivery import Delivered
from services.common.kafka.producer import Headers, KafkaProducer

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    @classmethod
    def of(cls, msg: Message, reason: str) -> DeadLetter:
        return cls(
            str(msg.topic()),
            int(msg.partition() or 0),
            int(msg.offset() or 0),
            msg.key(),
            msg.value(),
            reason,
        )

    def warn(self) -> None:
        """The log line every dead letter gets (the reason, never the record's content)."""
        log.warning(
            "dead-lettering %s[%d]@%d: %s", self.topic, self.partition, self.offset, self.reason
        )

    def headers(self, service: str) -> Headers:
        return [
            ("dlq.reason", self.reason[:2000].encode()),
            ("dlq.source.topic", self.topic.encode()),
            ("dlq.source.partition", str(self.partition).encode()),
            ("dlq.source.offset", str(self.offset).encode()),
            ("dlq.service", service.encode()),
            ("dlq.failed_at", utcnow().isoformat().encode()),
        ]


class DeadLetters:
    """Publishes dead letters synchronously: the source offset may be stored only after this."""

    def __init__(self, producer: KafkaProducer, *, service: str) -> None:
        self._producer = producer
        self._service = service

    def publish(self, letter: DeadLetter) -> Delivered:
        letter.warn()
        return self._producer.send_sync(
            dlq_topic(letter.topic),
            key=letter.key,
            value=letter.value,
            headers=letter.headers(self._service),
        )

    async def publish_async(self, letter: DeadLetter) -> Delivered:
        letter.warn()
        return await self._producer.send_raw(
            dlq_topic(letter.topic),
            key=letter.key,
            value=letter.value,
            headers=letter.headers(self._service),
        )
