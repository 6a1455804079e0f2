"""Dead-letter records: the raw record, unchanged, on `<topic>.dlq` with the reason in headers."""

from __future__ import annotations

from schemas.events import dlq_topic
from services.common.domain.dead_letter import DeadLetter
from services.common.kafka.delivery import Delivered
from services.common.kafka.producer import KafkaProducer

__all__ = ["DeadLetter", "DeadLetters"]


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
