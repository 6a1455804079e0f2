"""Builds the signal routes' parts from the ingest settings (their own composition root).

The parts are created on first use and closed with the app, so an ingest app that never sees a
provider webhook (or a unit test with fake ingest parts) opens no extra connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.engine import async_engine
from services.common.kafka.producer import KafkaProducer
from services.ingest.domain.provider_signatures import SendGridVerifier
from services.ingest.service_layer.provider_signals import SignalService
from services.ingest.service_layer.provider_signals_leads import LeadReader, PostgresLeadReader
from services.ingest.service_layer.provider_signals_ports import KafkaSignalPublisher
from services.ingest.service_layer.provider_signals_store import PostgresSignalStore
from services.ingest.settings import IngestSettings


@dataclass
class SignalParts:
    """What the signal routes need; tests may build one from fakes."""

    service: SignalService
    leads: LeadReader
    sendgrid: SendGridVerifier | None
    twilio_auth_token: str | None
    twilio_public_url: str | None


def _verifier(settings: IngestSettings) -> SendGridVerifier | None:
    key = (settings.sendgrid_webhook_public_key or "").strip()
    if not key:
        return None
    return SendGridVerifier(key, tolerance_seconds=settings.sendgrid_webhook_tolerance_seconds)


class LazySignalParts:
    """Creates the engine and producer on first use; `close()` releases what was created."""

    def __init__(
        self,
        settings: IngestSettings,
        *,
        engine: AsyncEngine | None = None,
        producer: KafkaProducer | None = None,
    ) -> None:
        """`engine`/`producer`: the ingest process's shared ones (not closed here); when not
        given, own ones are created on first use and closed by `close()`."""
        self._settings = settings
        self._verifier = _verifier(settings)  # a bad key fails at start, naming the variable
        self._lock = asyncio.Lock()
        self._parts: SignalParts | None = None
        self._shared_engine = engine
        self._shared_producer = producer
        self._engine: AsyncEngine | None = None
        self._producer: KafkaProducer | None = None

    async def get(self) -> SignalParts:
        if self._parts is not None:
            return self._parts
        async with self._lock:
            if self._parts is None:
                self._parts = self._build()
        return self._parts

    def _build(self) -> SignalParts:
        s = self._settings
        engine = self._shared_engine
        if engine is None:
            engine = self._engine = async_engine(s.sqlalchemy_url, pool_size=5, max_overflow=5)
        producer = self._shared_producer
        if producer is None:
            timeout_ms = int(max(10.0, s.kafka_publish_timeout_seconds * 3) * 1000)
            producer = self._producer = KafkaProducer(
                s.kafka_bootstrap_servers,
                client_id="ingest-signals",
                config={"message.timeout.ms": timeout_ms},
            ).start()
        token = s.twilio_auth_token.get_secret_value().strip() if s.twilio_auth_token else ""
        return SignalParts(
            service=SignalService(
                store=PostgresSignalStore(engine),
                publisher=KafkaSignalPublisher(
                    producer,
                    topic=s.topics.contact_signals,
                    timeout=s.kafka_publish_timeout_seconds,
                ),
                help_text=s.sms_help_text,
            ),
            leads=PostgresLeadReader(engine, chat_base_url=s.chat_base_url),
            sendgrid=self._verifier,
            twilio_auth_token=token or None,
            twilio_public_url=s.twilio_webhook_public_url or None,
        )

    async def close(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.close)
        if self._engine is not None:
            await self._engine.dispose()
        self._parts = self._producer = self._engine = None
