"""Composition root of the outbound service: builds every adapter from the settings, once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool

from schemas.base import Channel
from services.common.errors import InfrastructureError
from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.dlq import DeadLetters
from services.common.kafka.producer import KafkaProducer
from services.outbound.adapters.ledger_pg import PostgresLedger, define_claims
from services.outbound.adapters.outcomes_kafka import KafkaOutcomePublisher
from services.outbound.adapters.pg_pool import open_pool
from services.outbound.adapters.sendgrid_sender import SendGridSender
from services.outbound.adapters.templates import JinjaRenderer
from services.outbound.adapters.tenants_pg import PostgresTenantDirectory
from services.outbound.adapters.twilio_sender import TwilioSender
from services.outbound.entrypoints.consumer import CommandConsumer
from services.outbound.ports import OutcomePublisher, Sender
from services.outbound.service_layer.delivery import Delivery, Pacer, RetryPolicy
from services.outbound.service_layer.handler import HandlerConfig, TouchPointHandler
from services.outbound.service_layer.sweeper import Sweeper
from services.outbound.settings import OutboundSettings

log = logging.getLogger(__name__)
SERVICE = "outbound"


def handler_config(settings: OutboundSettings) -> HandlerConfig:
    return HandlerConfig(
        whitelist=settings.whitelist,
        email_configured=settings.email_configured,
        sms_configured=settings.sms_configured,
        frequency_caps={
            Channel.EMAIL: settings.frequency_cap_email,
            Channel.SMS: settings.frequency_cap_sms,
        },
        frequency_window=timedelta(hours=settings.frequency_window_hours),
        campaign_cap=settings.campaign_cap,
        claim_stale=timedelta(seconds=settings.claim_stale_seconds),
        sms_validity_max=settings.sms_validity_max_seconds,
        replay_send=settings.outbound_replay_send,
        phone_whitelist=settings.phone_whitelist,
        sms_regions=settings.sms_regions,
    )


def build_senders(
    settings: OutboundSettings, executor: ThreadPoolExecutor
) -> dict[Channel, Sender]:
    """Only configured providers exist: no key, no sender (and the gate says so first)."""
    senders: dict[Channel, Sender] = {}
    if settings.email_configured and settings.sendgrid_api_key is not None:
        senders[Channel.EMAIL] = SendGridSender(
            api_key=settings.sendgrid_api_key.get_secret_value().strip(),
            base_url=settings.sendgrid_api_base_url,
            timeout=settings.provider_timeout_seconds,
            executor=executor,
            reconcile=settings.sendgrid_reconcile,
            settle_seconds=settings.sendgrid_activity_settle_seconds,
            max_connections=settings.outbound_concurrency,
        )
    if settings.sms_configured and settings.twilio_auth_token is not None:
        senders[Channel.SMS] = TwilioSender(
            account_sid=(settings.twilio_account_sid or "").strip(),
            auth_token=settings.twilio_auth_token.get_secret_value().strip(),
            base_url=settings.twilio_api_base_url,
            from_number=settings.twilio_phone_number,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            status_callback=settings.status_callback,
            timeout=settings.provider_timeout_seconds,
            pool_size=settings.outbound_concurrency,
        )
    return senders


def build_renderer(settings: OutboundSettings) -> JinjaRenderer:
    """The renderer outbound sends with (`leadctl templates preview` renders with it too)."""
    return JinjaRenderer(
        chat_base_url=settings.chat_base_url,
        from_email=settings.sendgrid_from_email,
        from_name=settings.sendgrid_from_name,
        unsubscribe_base_url=settings.unsubscribe_base_url,
        unsubscribe_signer=settings.unsubscribe_signer,
    )


def build_handler(
    settings: OutboundSettings,
    *,
    pool: AsyncConnectionPool[Any],
    senders: dict[Channel, Sender],
    publisher: OutcomePublisher,
    tenants: PostgresTenantDirectory,
) -> tuple[TouchPointHandler, PostgresLedger]:
    ledger = PostgresLedger(pool)
    delivery = Delivery(
        ledger=ledger,
        pacer=Pacer(
            {
                "twilio": (settings.twilio_rate_per_second, settings.twilio_rate_burst),
                "sendgrid": (settings.sendgrid_rate_per_second, settings.sendgrid_rate_burst),
            }
        ),
        policy=RetryPolicy(
            base=settings.retry_base_seconds,
            cap=settings.retry_max_seconds,
            heartbeat_every=settings.claim_stale_seconds / 3,
        ),
    )
    handler = TouchPointHandler(
        config=handler_config(settings),
        ledger=ledger,
        tenants=tenants,
        renderer=build_renderer(settings),
        senders=senders,
        publisher=publisher,
        delivery=delivery,
    )
    return handler, ledger


@dataclass
class Outbound:
    """The running service's parts (what the entrypoints and tests need)."""

    settings: OutboundSettings
    handler: TouchPointHandler
    ledger: PostgresLedger
    producer: KafkaProducer
    senders: dict[Channel, Sender]
    sweeper: Sweeper
    consumer: CommandConsumer | None = None
    running: bool = field(default=False)

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the sweeper runs beside the consumer."""
        s = self.settings
        kafka = await asyncio.to_thread(
            AtLeastOnceConsumer,
            s.kafka,
            group_id=s.outbound_group_id,
            topics=[s.topics.touchpoint_commands],
            client_id=SERVICE,
        )
        self.consumer = CommandConsumer(
            consumer=kafka,
            handler=self.handler,
            dead_letters=DeadLetters(self.producer, service=SERVICE),
            concurrency=s.outbound_concurrency,
            batch_size=s.outbound_batch_size,
        )
        sweeping = asyncio.create_task(self.sweeper.run(stop), name="outbound-sweeper")
        self.running = True
        try:
            await self.consumer.run(stop)
        finally:
            self.running = False
            stop.set()
            await sweeping
            await asyncio.to_thread(kafka.close)

    async def ready(self) -> dict[str, bool]:
        return {"postgres": await self.ledger.ping(), "consumer": self.running}


@asynccontextmanager
async def build(settings: OutboundSettings) -> AsyncIterator[Outbound]:
    pool = await open_pool(settings.libpq_url, size=settings.db_pool_size, session=define_claims)
    producer = KafkaProducer(settings.kafka, client_id=SERVICE).start()
    executor = ThreadPoolExecutor(
        max_workers=settings.outbound_concurrency, thread_name_prefix="sendgrid"
    )
    senders = build_senders(settings, executor)
    publisher = KafkaOutcomePublisher(producer, topic=settings.topics.touchpoint_outcomes)
    tenants = PostgresTenantDirectory(pool, ttl_seconds=settings.tenant_cache_seconds)
    try:
        log.info("tenant profiles read: %d", await tenants.preload())
    except InfrastructureError as exc:  # each is read when first needed, as later
        log.warning("tenant profiles not read at start (%s)", exc)
    handler, ledger = build_handler(
        settings, pool=pool, senders=senders, publisher=publisher, tenants=tenants
    )
    sweeper = Sweeper(
        ledger=ledger,
        senders=senders,
        publisher=publisher,
        chat_base_url=settings.chat_base_url,
        stale_after=timedelta(seconds=settings.claim_stale_seconds),
        interval=settings.sweep_interval_seconds,
        replay_send=settings.outbound_replay_send,
    )
    try:
        yield Outbound(settings, handler, ledger, producer, senders, sweeper)
    finally:
        for sender in senders.values():
            await sender.close()
        executor.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(producer.close)
        await pool.close()
