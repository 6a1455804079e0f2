"""Ports of the signal service (PostgreSQL store, Kafka publisher) and the Kafka publisher."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from schemas.base import Channel
from schemas.events import ContactSignal
from services.common.errors import DeliveryError
from services.common.kafka.producer import KafkaProducer
from services.ingest.errors import PublishUnavailable
from services.ingest.service_layer.provider_signals_store import TouchRow

RETRY_AFTER_SECONDS = 5.0


class SignalUnit(Protocol):
    async def claim(
        self, provider: str, keys: Sequence[str], tenant_id: uuid.UUID | None = None
    ) -> set[str]: ...

    async def delivery_by_command(
        self,
        command_id: uuid.UUID,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None: ...

    async def delivery_by_message(
        self,
        message_id: str,
        *,
        status: str,
        error: str | None,
        at: datetime,
        not_after: Iterable[str] = (),
    ) -> TouchRow | None: ...

    async def leads_for_contact(
        self, channel: Channel, contact: str
    ) -> list[tuple[uuid.UUID, uuid.UUID]]: ...


class SignalStore(Protocol):
    async def suppress(
        self, *, channel: Channel, contact: str, reason: str, source: str
    ) -> bool: ...

    async def unsuppress(
        self, *, channel: Channel, contact: str, reasons: Sequence[str]
    ) -> int: ...

    async def lead_contact(
        self, *, tenant_id: uuid.UUID, lead_id: uuid.UUID, channel: Channel
    ) -> str | None: ...

    def unit(self) -> AbstractAsyncContextManager[SignalUnit]: ...


class SignalPublisher(Protocol):
    async def publish(self, signals: Sequence[ContactSignal]) -> None: ...


class KafkaSignalPublisher:
    """Signals to the contact-signals topic, keyed by tenant, all acknowledged or an error."""

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
            raise PublishUnavailable(
                f"Kafka did not acknowledge within {self._timeout:g}s",
                retry_after=RETRY_AFTER_SECONDS,
            ) from None
        except DeliveryError as exc:
            raise PublishUnavailable(
                f"Kafka refused: {exc}", retry_after=RETRY_AFTER_SECONDS
            ) from exc
