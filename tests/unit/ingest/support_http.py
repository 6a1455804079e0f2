"""The ingest app on hand-written fakes of its ports (no Kafka, no PostgreSQL, no HTTP peer),
for the tests that go through aiohttp."""

from __future__ import annotations

import copy

from prometheus_client import REGISTRY, generate_latest

from fakes.shopmonkey.data import World
from fakes.shopmonkey.webhooks import envelope
from services.common.db.engine import async_engine
from services.ingest.bootstrap import Ingest, SignalParts, build_dashboard
from services.ingest.service_layer.contact_signals import SignalService
from services.ingest.service_layer.seen_events import SeenEvents
from services.ingest.service_layer.webhooks import WebhookConfig, WebhookIngest
from services.ingest.service_layer.website import WebsiteLeads
from services.ingest.settings import IngestSettings
from tests.support.deployment_secrets import LEAD_IDS, UNSUBSCRIBE_SIGNER
from tests.unit.ingest.support import (
    FakeConsents,
    FakeCustomers,
    FakeLocations,
    FakePublisher,
    FakeTenants,
    company_of,
)
from tests.unit.ingest.support_leads import fake_desk
from tests.unit.ingest.support_operators import FakeOperatorStore, operator_access
from tests.unit.ingest.support_signals import FakeLeads, FakeStore
from tests.unit.ingest.support_signals import FakePublisher as FakeSignalPublisher

WEBSITE_KEY = "lk_test_website_key"


class Harness:
    """The app on fake ports; `world`/`tenants`: other simulated companies and what of them
    is known here (default: two companies, the first a tenant, plus a legacy-signing one)."""

    def __init__(
        self,
        *,
        demo_mode: bool = False,
        whitelist: frozenset[str] = frozenset(),
        world: World | None = None,
        tenants: FakeTenants | None = None,
        locations: FakeLocations | None = None,
        consents: FakeConsents | None = None,
    ):
        self.world = world or World(seed=7, tenants=2, demo_emails=("sam@example.com",))
        self.company = self.world.companies[0]
        self.legacy = self.world.add_company(9, signature_scheme="legacy_hmac")
        self.tenants = tenants or FakeTenants(
            company_of(self.company),
            company_of(self.legacy, api_key=False),
            website_keys={WEBSITE_KEY: self.company.tenant_id},
        )
        self.publisher = FakePublisher()
        self.customers = FakeCustomers(self.world)
        self.operators = FakeOperatorStore()
        config = WebhookConfig(demo_mode=demo_mode, whitelist=whitelist, lead_ids=LEAD_IDS)
        seen_events = SeenEvents()
        self.settings = IngestSettings(
            tenant_id=self.company.tenant_id, max_body_bytes=64 * 1024, demo_mode=demo_mode
        )
        self.ingest = Ingest(
            settings=self.settings,
            tenants=self.tenants,
            webhooks=WebhookIngest(
                customers=self.customers,
                publisher=self.publisher,
                config=config,
                seen_events=seen_events,
                tenants=self.tenants,
                locations=locations,
                consents=consents,
            ),
            website=WebsiteLeads(
                tenants=self.tenants,
                publisher=self.publisher,
                config=config,
                seen_events=seen_events,
            ),
            signals=SignalParts(
                service=SignalService(
                    store=FakeStore(), publisher=FakeSignalPublisher(), help_text=""
                ),
                leads=FakeLeads(),
                sendgrid=None,
                twilio_auth_token=None,
                twilio_public_url=None,
                links=UNSUBSCRIBE_SIGNER,
                tenants=self.tenants,
            ),
            # Never connected: the webhook path only uses the fake ports.
            dashboard=build_dashboard(
                self.settings, async_engine("postgresql+psycopg://unit@127.0.0.1:1/unit")
            ),
            operators=operator_access(self.operators),
            ready=self._ready,
            desk=fake_desk().desk,
        )

    async def _ready(self) -> dict[str, bool]:
        return {"kafka": True, "postgres": True}

    def order_doc(self, operation: str = "INSERT") -> dict:
        order = self.world.create_order(self.company)
        return envelope("order", operation, copy.deepcopy(order))


def metrics_text() -> str:
    """This process's Prometheus exposition (what the admin listener's /metrics serves)."""
    return generate_latest(REGISTRY).decode()
