"""Composition root of ingest and the poller: builds every adapter from the settings, once."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.base import utcnow
from services.common.db.engine import async_engine
from services.common.domain.signed_links import Signer
from services.common.kafka.lag import consumer_lag
from services.common.kafka.producer import KafkaProducer
from services.common.rate_limiter import RateLimiter
from services.common.settings import CommonSettings
from services.ingest.adapters.backfill_cursors_pg import PostgresBackfillCursors
from services.ingest.adapters.consent_store_pg import PostgresConsentStore
from services.ingest.adapters.customer_cache import CachedCustomers
from services.ingest.adapters.customer_locations_pg import PostgresCustomerLocations
from services.ingest.adapters.dashboard_pg import PostgresDashboardReads
from services.ingest.adapters.ingest_writes_pg import IngestWrites
from services.ingest.adapters.lag_probe import LagProbe, LagReader
from services.ingest.adapters.lead_directory_pg import PostgresLeadDirectory
from services.ingest.adapters.lead_reader_pg import PostgresLeadReader
from services.ingest.adapters.lead_timeline_kafka import KafkaLeadTimeline
from services.ingest.adapters.metrics import WEBHOOK_LATENCY_METRIC, WEBHOOK_REQUEST_METRIC
from services.ingest.adapters.operators_pg import Argon2Credentials, PostgresOperators
from services.ingest.adapters.order_services import ShopmonkeyOrderServices
from services.ingest.adapters.poll_cursors_pg import PostgresCursors
from services.ingest.adapters.publisher_kafka import KafkaEventPublisher, KafkaSignalPublisher
from services.ingest.adapters.sendgrid_webhook import SendGridVerifier
from services.ingest.adapters.shopmonkey_client import NO_RETRY, Retries, ShopmonkeyClient
from services.ingest.adapters.signal_store_pg import PostgresSignalStore
from services.ingest.adapters.tenants_pg import PostgresTenants
from services.ingest.adapters.webhook_stats_prometheus import RegistryWebhookMeter
from services.ingest.errors import UnknownTenant
from services.ingest.ports import LeadReader, TenantDirectory
from services.ingest.service_layer.backfill import Backfill
from services.ingest.service_layer.consent import RecordingCustomers
from services.ingest.service_layer.contact_signals import SignalService
from services.ingest.service_layer.dashboard import Dashboard
from services.ingest.service_layer.lead_desk import LeadDesk
from services.ingest.service_layer.operator_access import OperatorAccess, SignInLimits
from services.ingest.service_layer.poller import Poller, PollerConfig
from services.ingest.service_layer.record_reader import RecordReader
from services.ingest.service_layer.seen_events import SeenEvents
from services.ingest.service_layer.webhooks import WebhookConfig, WebhookIngest
from services.ingest.service_layer.website import WebsiteLeads
from services.ingest.settings import BackfillSettings, IngestSettings

SERVICE = "ingest"
#: A webhook waits at most this long for a customer's contact details before answering 503.
WEBHOOK_CUSTOMER_DEADLINE = 3.0

#: librdkafka batches a partition's records for this long. Webhooks of 200 locations spread
#: over every partition: a shorter linger costs the producer's broker thread much more per
#: record (one small ProduceRequest per partition and wake-up) for a few ms less per answer
#: (figures in bench/ingest/README.md).
WEBHOOK_LINGER_MS = 5.0

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


@dataclass
class SignalParts:
    """What the provider-webhook, lead API and unsubscribe routes need (tests build fakes)."""

    service: SignalService
    leads: LeadReader
    sendgrid: SendGridVerifier | None
    twilio_auth_token: str | None
    twilio_public_url: str | None
    #: verifies unsubscribe links (LINK_SIGNING_KEYS)
    links: Signer
    #: the locations' names for the unsubscribe pages
    tenants: TenantDirectory
    #: UNSUBSCRIBE_SCOPE=brand: an unsubscribe stops every location, not only the company's
    unsubscribe_brand_wide: bool = False


@dataclass
class Ingest:
    """The HTTP side's parts: what the routes, the dashboard and tests need.

    They share the process's one acked KafkaProducer and one AsyncEngine of DATABASE_URL, which
    `build_ingest` opens and closes (in the app's cleanup_ctx): never close them in a handler.
    """

    settings: IngestSettings
    tenants: TenantDirectory
    webhooks: WebhookIngest
    website: WebsiteLeads
    signals: SignalParts
    dashboard: Dashboard
    operators: OperatorAccess
    ready: ReadyCheck
    desk: LeadDesk


@dataclass
class PollerParts:
    settings: IngestSettings
    poller: Poller
    ready: ReadyCheck


def webhook_config(settings: IngestSettings) -> WebhookConfig:
    return WebhookConfig(
        demo_mode=settings.demo_mode,
        whitelist=settings.whitelist,
        lead_ids=settings.lead_ids,
        tolerance=settings.webhook_tolerance_seconds,
    )


def _tenants(
    settings: IngestSettings, engine: AsyncEngine, *, listen: bool = False
) -> PostgresTenants:
    """The directory of companies and locations; `listen`: follow PostgreSQL's change
    notifications (a process that answers callers; `start()` it)."""
    key = settings.shopmonkey_api_key
    return PostgresTenants(
        engine,
        box=settings.secret_box,
        ttl=settings.tenant_cache_seconds,
        listen_url=settings.libpq_url if listen else None,
        default_tenant_id=settings.tenant_id,
        default_api_key=key.get_secret_value().strip() if key else None,
    )


def _ready(publisher: KafkaEventPublisher, tenants: PostgresTenants) -> ReadyCheck:
    async def ready() -> dict[str, bool]:
        kafka, postgres = await asyncio.gather(publisher.ready(), tenants.ping())
        return {"kafka": kafka, "postgres": postgres}

    return ready


@asynccontextmanager
async def _closing(
    engine: AsyncEngine,
    producer: KafkaProducer,
    client: ShopmonkeyClient,
    *stores: IngestWrites,
) -> AsyncIterator[None]:
    """Close what a builder opened, the newest first, however its block ends."""
    try:
        yield
    finally:
        for store in reversed(stores):
            await store.close()
        await client.close()
        await asyncio.to_thread(producer.close)
        await engine.dispose()


def _sendgrid_verifier(settings: IngestSettings) -> SendGridVerifier | None:
    """None without a key (every SendGrid event refused); a bad key fails here, at start."""
    key = (settings.sendgrid_webhook_public_key or "").strip()
    if not key:
        return None
    return SendGridVerifier(key, tolerance_seconds=settings.sendgrid_webhook_tolerance_seconds)


def _signal_publisher(settings: IngestSettings, producer: KafkaProducer) -> KafkaSignalPublisher:
    return KafkaSignalPublisher(
        producer,
        topic=settings.topics.contact_signals,
        timeout=settings.kafka_publish_timeout_seconds,
    )


def build_lead_desk(
    settings: IngestSettings, engine: AsyncEngine, producer: KafkaProducer
) -> LeadDesk:
    """The dashboard's leads: search and rows in PostgreSQL, timeline from Kafka, actions as
    contact signals (suppressions recorded first)."""
    return LeadDesk(
        directory=PostgresLeadDirectory(engine),
        timeline=KafkaLeadTimeline(settings),
        store=PostgresSignalStore(engine),
        publisher=_signal_publisher(settings, producer),
        whitelist=settings.whitelist,
    )


def _signal_parts(
    settings: IngestSettings,
    engine: AsyncEngine,
    producer: KafkaProducer,
    sendgrid: SendGridVerifier | None,
    tenants: PostgresTenants,
) -> SignalParts:
    token = settings.twilio_auth_token
    twilio_token = token.get_secret_value().strip() if token else ""
    return SignalParts(
        service=SignalService(
            store=PostgresSignalStore(engine),
            publisher=_signal_publisher(settings, producer),
            help_text=settings.sms_help_text,
        ),
        leads=PostgresLeadReader(
            engine, chat_base_url=settings.chat_base_url, tokens=tenants.for_lead_token
        ),
        sendgrid=sendgrid,
        twilio_auth_token=twilio_token or None,
        twilio_public_url=settings.twilio_webhook_public_url or None,
        links=settings.unsubscribe_signer,
        tenants=tenants,
        unsubscribe_brand_wide=settings.unsubscribe_scope == "brand",
    )


def build_operator_access(settings: IngestSettings, engine: AsyncEngine) -> OperatorAccess:
    """Operator sign-in, sessions (LINK_SIGNING_KEYS) and API tokens over `engine`."""
    return OperatorAccess(
        store=PostgresOperators(engine),
        credentials=Argon2Credentials(),
        signer=settings.session_signer,
        session_seconds=settings.admin_session_hours * 3600,
        limits=SignInLimits(
            per_account=settings.sign_in_max_failures,
            per_address=settings.sign_in_max_failures_per_address,
            window_seconds=settings.sign_in_window_seconds,
        ),
    )


def build_dashboard(
    settings: CommonSettings,
    engine: AsyncEngine,
    *,
    registry: CollectorRegistry = REGISTRY,
    lag_reader: LagReader | None = None,
) -> Dashboard:
    """The dashboard on `engine`, ingest's webhook instruments in `registry`; `lag_reader`
    defaults to every consumer group's lag on this environment's topics."""
    read_lag = lag_reader or functools.partial(
        consumer_lag, settings.kafka, settings.topics, timeout=5.0
    )
    poll = getattr(settings, "poll_interval_seconds", 30.0)
    key = getattr(settings, "shopmonkey_api_key", None)
    return Dashboard(
        poll_interval=timedelta(seconds=poll),
        default_key_tenant=settings.tenant_id if key and key.get_secret_value().strip() else None,
        reads=PostgresDashboardReads(engine),
        lag=LagProbe(read_lag, ttl=5.0),
        webhooks=RegistryWebhookMeter(
            registry, request_metric=WEBHOOK_REQUEST_METRIC, latency_metric=WEBHOOK_LATENCY_METRIC
        ),
    )


@asynccontextmanager
async def build_ingest(settings: IngestSettings) -> AsyncIterator[Ingest]:
    sendgrid = _sendgrid_verifier(settings)
    engine = async_engine(settings.sqlalchemy_url, pool_size=5, max_overflow=5)
    message_timeout_ms = int(max(10.0, settings.kafka_publish_timeout_seconds * 3) * 1000)
    producer = KafkaProducer(
        settings.kafka,
        client_id=SERVICE,
        poll_in_loop=True,
        batch_threads=True,
        config={"message.timeout.ms": message_timeout_ms, "linger.ms": WEBHOOK_LINGER_MS},
    ).start()
    client = await ShopmonkeyClient(
        settings.shopmonkey_api_base_url, timeout=settings.shopmonkey_timeout_seconds
    ).start()
    writes = IngestWrites(engine)  # consent and visits: one group commit
    consents, locations = PostgresConsentStore(writes), PostgresCustomerLocations(writes)
    async with _closing(engine, producer, client, writes):
        tenants = await _tenants(settings, engine, listen=True).start()
        try:
            publisher = KafkaEventPublisher(
                producer,
                topic=settings.topics.order_events,
                timeout=settings.kafka_publish_timeout_seconds,
            )
            customers = RecordingCustomers(
                CachedCustomers(
                    client,
                    ttl=settings.customer_cache_seconds,
                    deadline=min(WEBHOOK_CUSTOMER_DEADLINE, settings.shopmonkey_timeout_seconds),
                    retry=NO_RETRY,
                ),
                consents,
                utcnow,
            )
            seen_events = SeenEvents()
            config = webhook_config(settings)
            yield Ingest(
                settings=settings,
                tenants=tenants,
                webhooks=WebhookIngest(
                    customers=customers,
                    publisher=publisher,
                    config=config,
                    seen_events=seen_events,
                    consents=consents,
                    tenants=tenants,
                    locations=locations,
                ),
                website=WebsiteLeads(
                    tenants=tenants,
                    publisher=publisher,
                    config=config,
                    seen_events=seen_events,
                    consents=consents,
                ),
                signals=_signal_parts(settings, engine, producer, sendgrid, tenants),
                dashboard=build_dashboard(settings, engine),
                operators=build_operator_access(settings, engine),
                ready=_ready(publisher, tenants),
                desk=build_lead_desk(settings, engine, producer),
            )
        finally:
            await tenants.close()


def poller_config(
    settings: IngestSettings, *, only: frozenset[uuid.UUID] | None = None
) -> PollerConfig:
    return PollerConfig(
        lead_ids=settings.lead_ids,
        only=only,
        interval=settings.poll_interval_seconds,
        overlap=settings.poll_overlap_seconds,
        initial_lookback=settings.poll_initial_lookback_seconds,
        concurrency=settings.poll_concurrency,
        demo_mode=settings.demo_mode,
        whitelist=settings.whitelist,
    )


@asynccontextmanager
async def build_poller(
    settings: IngestSettings,
    *,
    retry: Retries | None = None,
    only: frozenset[uuid.UUID] | None = None,
) -> AsyncIterator[PollerParts]:
    engine = async_engine(settings.sqlalchemy_url, pool_size=3, max_overflow=5)
    producer = KafkaProducer(settings.kafka, client_id="poller").start()
    client = await ShopmonkeyClient(
        settings.shopmonkey_api_base_url,
        timeout=settings.shopmonkey_timeout_seconds,
        retry=retry or Retries(),
    ).start()
    writes = IngestWrites(engine)  # consent and visits: one group commit
    consents, locations = PostgresConsentStore(writes), PostgresCustomerLocations(writes)
    async with _closing(engine, producer, client, writes):
        tenants = _tenants(settings, engine)
        publisher = KafkaEventPublisher(
            producer,
            topic=settings.topics.order_events,
            timeout=max(30.0, settings.kafka_publish_timeout_seconds),
        )
        poller = Poller(
            tenants=tenants,
            reader=RecordReader(client),
            customers=RecordingCustomers(
                CachedCustomers(
                    client,
                    ttl=settings.customer_cache_seconds,
                    deadline=None,
                    retry=retry or Retries(),
                ),
                consents,
                utcnow,
            ),
            consents=consents,
            services=ShopmonkeyOrderServices(client, retry=retry or Retries()),
            locations=locations,
            publisher=publisher,
            cursors=PostgresCursors(engine),
            config=poller_config(settings, only=only),
        )
        yield PollerParts(settings=settings, poller=poller, ready=_ready(publisher, tenants))


@asynccontextmanager
async def build_backfill(
    settings: BackfillSettings, tenant_id: uuid.UUID, since: datetime
) -> AsyncIterator[Backfill]:
    """The backfill of one tenant's orders created since `since` (read with its company's key),
    every Shopmonkey request paced by BACKFILL_REQUESTS_PER_MINUTE. Raises UnknownTenant for no
    such active tenant."""
    engine = async_engine(settings.sqlalchemy_url, pool_size=2)
    producer = KafkaProducer(settings.kafka, client_id="backfill").start()
    client = await ShopmonkeyClient(
        settings.shopmonkey_api_base_url,
        timeout=settings.shopmonkey_timeout_seconds,
        limiter=RateLimiter.per_minute(settings.backfill_requests_per_minute),
    ).start()
    writes = IngestWrites(engine)  # consent and visits: one group commit
    consents, locations = PostgresConsentStore(writes), PostgresCustomerLocations(writes)
    async with _closing(engine, producer, client, writes):
        company = await PostgresTenants(engine, box=settings.secret_box, ttl=0).company_of(
            tenant_id
        )
        if company is None:
            raise UnknownTenant(f"no active tenant {tenant_id}")
        yield Backfill(
            company=company,
            tenant=company.by_id[tenant_id],
            since=since,
            reader=RecordReader(client),
            customers=RecordingCustomers(
                CachedCustomers(client, ttl=3600.0, deadline=None, retry=Retries()),
                consents,
                utcnow,
            ),
            consents=consents,
            services=ShopmonkeyOrderServices(client, retry=Retries()),
            locations=locations,
            publisher=KafkaEventPublisher(
                producer, topic=settings.topics.order_events, timeout=60.0
            ),
            cursors=PostgresBackfillCursors(engine),
            max_age=timedelta(days=settings.backfill_plan_max_age_days),
            lead_ids=settings.lead_ids,
            demo_mode=settings.demo_mode,
            whitelist=settings.whitelist,
        )
