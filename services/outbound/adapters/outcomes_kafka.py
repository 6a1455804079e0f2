"""Publish TouchPointOutcomes on leads.touchpoint-outcomes.v1, keyed by tenant, acknowledged."""

from __future__ import annotations

from schemas.events import TouchPointOutcome
from services.common.kafka.producer import KafkaProducer


class KafkaOutcomePublisher:
    """`OutcomePublisher`: returns only once the broker acknowledged (acks=all)."""

    def __init__(self, producer: KafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, outcome: TouchPointOutcome) -> None:
        await self._producer.send(self._topic, outcome, key=str(outcome.tenant_id))
