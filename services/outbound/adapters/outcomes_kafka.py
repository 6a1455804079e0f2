"""Publish TouchPointOutcomes on leads.touchpoint-outcomes.v1, keyed by tenant, acknowledged."""

from __future__ import annotations

from schemas.events import TouchPointOutcome
from services.common.domain import hops
from services.common.kafka.producer import KafkaProducer


class KafkaOutcomePublisher:
    """`OutcomePublisher`: returns only once the broker acknowledged (acks=all)."""

    def __init__(self, producer: KafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, outcome: TouchPointOutcome) -> None:
        # a traced command's outcome carries every hop of its way, to the provider's answer
        headers = hops.headers()
        await self._producer.send(self._topic, outcome, key=str(outcome.tenant_id), headers=headers)
