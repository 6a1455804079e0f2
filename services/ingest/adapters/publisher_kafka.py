"""OrderEvents to `leads.order-events.v1` and ContactSignals to `leads.contact-signals.v1`,
keyed by tenant, acknowledged or `PublishUnavailable`.

The wait for the acknowledgement is bounded per call (KAFKA_PUBLISH_TIMEOUT_SECONDS), so a
broker that is down turns a webhook into a 503 within seconds instead of librdkafka's message
timeout. A record given up on may still be delivered later: it carries the same `event_id` as
the retry Shopmonkey sends after the 503, and consumers dedupe on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from schemas.base import tenant_text
from schemas.events import ContactSignal, OrderEvent
from services.common.domain import hops
from services.common.errors import DeliveryError, DeliveryTimeout
from services.common.kafka.producer import KafkaProducer
from services.ingest.adapters.metrics import LEADS_INGESTED, child
from services.ingest.domain.draft import ELSEWHERE_EVENT, OrderEventDraft
from services.ingest.errors import PublishUnavailable

RETRY_AFTER_SECONDS = 5.0


def _not_acknowledged(timeout: float) -> PublishUnavailable:
    return PublishUnavailable(
        f"Kafka did not acknowledge within {timeout:g}s", retry_after=RETRY_AFTER_SECONDS
    )


class KafkaEventPublisher:
    """`EventPublisher` over the shared acked producer."""

    def __init__(self, producer: KafkaProducer, *, topic: str, timeout: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout = timeout
        self._ready_at = 0.0
        self._ready = False

    async def publish(self, event: OrderEvent | OrderEventDraft) -> None:
        tenant = tenant_text(event.tenant_id)
        try:
            await self._producer.submit(
                self._topic,
                key=tenant,
                value=event.to_bytes(),
                headers=hops.headers(),  # when its webhook came, if it came by one
                timeout=self._timeout,
            )
        except DeliveryTimeout:
            raise _not_acknowledged(self._timeout) from None
        except DeliveryError as exc:
            raise PublishUnavailable(f"Kafka: {exc}", retry_after=RETRY_AFTER_SECONDS) from exc
        # an order told to the company's other locations is no record of theirs: counted apart
        entity = "elsewhere" if ELSEWHERE_EVENT in event.event_id else event.entity
        child(LEADS_INGESTED, tenant, event.source.value, entity).inc()

    async def ready(self) -> bool:
        """The broker answers a metadata request for our topic (cached for 2 s)."""
        if time.monotonic() - self._ready_at < 2.0:
            return self._ready

        def probe() -> bool:
            meta = self._producer.raw.list_topics(topic=self._topic, timeout=2.0)
            topic = meta.topics.get(self._topic)
            return bool(meta.brokers) and topic is not None and topic.error is None

        try:
            self._ready = await asyncio.to_thread(probe)
        except Exception:
            self._ready = False
        self._ready_at = time.monotonic()
        return self._ready


class KafkaSignalPublisher:
    """`SignalPublisher`: a webhook's signals, all acknowledged within `timeout` or an error."""

    def __init__(self, producer: KafkaProducer, *, topic: str, timeout: float) -> None:
        self._producer = producer
        self._topic = topic
        self._timeout = timeout

    async def publish(self, signals: Sequence[ContactSignal]) -> None:
        if not signals:
            return
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.gather(
                    *(self._producer.send(self._topic, s, key=str(s.tenant_id)) for s in signals)
                )
        except TimeoutError:
            raise _not_acknowledged(self._timeout) from None
        except DeliveryError as exc:
            raise PublishUnavailable(
                f"Kafka refused: {exc}", retry_after=RETRY_AFTER_SECONDS
            ) from exc
