"""The dashboard in headless Chromium (Debian's, driven by Playwright) on a running ingest (the
real `serve`: webhooks on the public listener, the dashboard on the admin listener, its own
webhook metrics) with real data: rows in PostgreSQL's tables, signed Shopmonkey webhooks acked
by Kafka, a consumer group's committed offsets. An operator signs in first (a wrong password is
refused); the figures on screen are those, and they follow the data without a reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Consumer, TopicPartition
from playwright.async_api import Browser, Page, async_playwright, expect
from prometheus_client import REGISTRY
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from fakes.shopmonkey.data import Company, World
from fakes.shopmonkey.server import Simulator
from fakes.shopmonkey.webhooks import envelope, signed_headers
from services.common.db.models import Lead
from services.common.kafka.producer import KafkaProducer
from services.common.settings import load_settings
from services.common.topics import Topics
from services.ingest.adapters.metrics import WEBHOOK_REQUEST_METRIC
from services.ingest.entrypoints.cli import serve
from services.ingest.settings import IngestSettings
from tests.conftest import ROOT, free_port
from tests.support.operators import Account, add_account
from tests.support.read_model_rows import add_job, add_lead

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = ROOT / ".local" / "screenshots" / "dashboard.png"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # the binary infra/browser.sh ensures
HOSTILE_NAME = 'Springfield <img src=x onerror="window.__xss=1"> & "Co"'
FUNNEL = {
    "new": 5,
    "contacted": 3,
    "engaged": 2,
    "qualified": 1,
    "appointment_set": 1,
    "completed": 1,
    "lost": 2,
}
# (status, reason, channel, delivery status) of each touch point decided in the last hour
DECISIONS = (
    [("sent", "accepted", "email", "delivered")] * 2
    + [("sent", "accepted", "email", None), ("sent", "accepted", "sms", "delivered")]
    + [("skipped", "not_whitelisted", "email", None)] * 3
    + [("skipped", "whitelist_empty", "sms", None), ("skipped", "suppressed", "email", None)]
    + [("deferred", "outside_send_window", "sms", None)] * 2
    + [("failed", "twilio_21211_invalid_number: 'To' is not valid", "sms", None)]
)
# declined work of the first two leads: (services, cents, revived services, revived cents)
DECLINED = [(2, 120_000, 1, 45_050), (1, 30_000, 0, 0)]


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    """Debian's chromium, installed by infra/browser.sh when missing (idempotent)."""
    subprocess.run(["bash", str(ROOT / "infra" / "browser.sh")], check=True)


@contextlib.asynccontextmanager
async def running_ingest(api_base: str) -> AsyncIterator[tuple[str, str]]:
    """The real ingest (`leadctl ingest`'s `serve`) on free ports: (public URL, admin URL);
    env from `service_env` (test DB, this test's topics)."""
    port, admin_port = free_port(), free_port()
    settings = load_settings(
        IngestSettings,
        shopmonkey_api_base_url=api_base,
        webhook_host="127.0.0.1",
        webhook_port=port,
        admin_port=admin_port,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(serve(settings, stop))
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            assert not task.done(), task.exception()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"http://127.0.0.1:{admin_port}/healthz") as resp:
                    if resp.status == 200:
                        break
            await asyncio.sleep(0.05)
    try:
        yield base, f"http://127.0.0.1:{admin_port}"
    finally:
        stop.set()
        await task


async def send_webhooks(base: str, sim: Simulator, company: Company, n: int) -> None:
    """`n` new orders, each a signed Shopmonkey webhook ingest must accept (Kafka acked)."""
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            order = sim.world.create_order(company)
            body = json.dumps(envelope("order", "INSERT", order)).encode()
            url = f"{base}/webhooks/shopmonkey/{company.tenant_id}/order"
            async with http.post(url, data=body, headers=signed_headers(company, body)) as res:
                assert res.status == 200, await res.text()


def accepted_so_far() -> int:
    """This process's ingest counter (other tests in the session may have added to it)."""
    value = REGISTRY.get_sample_value(WEBHOOK_REQUEST_METRIC, {"outcome": "accepted"})
    return int(value or 0)


def seed_lag(kafka: str, topics: Topics, tenant: uuid.UUID, group: str) -> None:
    """Six commands for the tenant, of which the group has processed two: lag 4."""
    producer = KafkaProducer(kafka, client_id="dashboard-test").start()
    delivered = [
        producer.send_sync(topics.touchpoint_commands, key=str(tenant), value=b"{}")
        for _ in range(6)
    ]
    producer.close()
    partition = delivered[0].partition
    first = min(d.offset for d in delivered)
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topics.touchpoint_commands, partition, first + 2)],
            asynchronous=False,
        )
    finally:
        consumer.close()


async def open_dashboard(
    browser: Browser, url: str, operator: Account, *, viewer_text: str = "all locations"
) -> tuple[Page, list[str]]:
    """The page at `url`, after signing in as `operator` (the page asks for it first)."""
    page = await browser.new_page(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(url)
    await expect(page.get_by_test_id("sign-in-form")).to_be_visible()  # no figures anonymously
    assert await page.get_by_test_id("kpi-leads").count() == 0
    await page.get_by_test_id("sign-in-email").fill(operator.email)
    await page.get_by_test_id("sign-in-password").fill("not the password")
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("sign-in-message")).to_have_text("Wrong email or password.")
    await page.get_by_test_id("sign-in-email").fill(operator.email)
    await page.get_by_test_id("sign-in-password").fill(operator.password)
    await page.get_by_test_id("sign-in-submit").click()
    await expect(page.get_by_test_id("viewer")).to_contain_text(viewer_text)
    await page.goto(url)  # the location and window asked for
    return page, errors


async def test_dashboard_shows_and_follows_the_database(
    service_env: dict[str, str],
    db_engine: AsyncEngine,
    make_tenant: Callable[..., Awaitable[tuple[Any, str]]],
    topics: Topics,
    kafka_bootstrap: str,
) -> None:
    sim = await Simulator(World(seed=random.randrange(1 << 30), tenants=1)).start()
    company = sim.world.companies[0]
    tenant, _ = await make_tenant(
        name=HOSTILE_NAME,
        tenant_id=company.tenant_id,
        company_id=company.company_id,
        location_id=company.location_id,
        api_key=company.api_key,
        webhook_secret=company.webhook_secret,
        signature_scheme=company.signature_scheme,
    )
    async with db_engine.begin() as conn:
        leads = []
        for state, count in FUNNEL.items():
            for i in range(count):
                leads.append(await add_lead(conn, tenant.id, state, created_minutes_ago=3 + i * 7))
        for lead, (ds, dc, rs, rc) in zip(leads, DECLINED, strict=False):
            await conn.execute(
                update(Lead)
                .where(Lead.lead_id == lead)
                .values(
                    declined_services=ds, declined_cents=dc, revived_services=rs, revived_cents=rc
                )
            )
        for step, (status, reason, channel, delivery) in enumerate(DECISIONS):
            await add_job(
                conn,
                tenant.id,
                leads[0],
                status,
                reason,
                step_index=step,
                channel=channel,
                decided_minutes_ago=2 + step * 3,
                provider_message_id=f"msg-{step}" if status == "sent" else None,
                delivery_status=delivery,
            )
    group = f"outbound-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(seed_lag, kafka_bootstrap, topics, tenant.id, group)

    operator = await add_account(db_engine)
    async with running_ingest(sim.api_base) as (base, admin), async_playwright() as pw:
        await send_webhooks(base, sim, company, 5)
        accepted = accepted_so_far()
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = await open_dashboard(
                browser, f"{admin}/dashboard/?tenant={tenant.id}&window=60&refresh=1", operator
            )
            # the funnel is the database's, state by state
            for state, count in FUNNEL.items():
                await expect(page.get_by_test_id(f"funnel-count-{state}")).to_have_text(str(count))
            await expect(page.get_by_test_id("kpi-leads")).to_have_text("15")
            await expect(page.get_by_test_id("kpi-ingested")).to_have_text("15")
            await expect(page.get_by_test_id("kpi-sent")).to_have_text("4")
            # whitelist skips (3 not_whitelisted + 1 whitelist_empty) / 12 decisions
            await expect(page.get_by_test_id("kpi-skip")).to_have_text("33.3%")
            reasons = page.get_by_test_id("reasons")
            await expect(
                reasons.locator('tr[data-reason="skipped/not_whitelisted"] td.num')
            ).to_have_text("3")
            await expect(
                reasons.locator('tr[data-reason="failed/twilio_21211_invalid_number"] td.num')
            ).to_have_text("1")
            bars = page.get_by_test_id("tp-chart").locator("rect")
            assert await bars.count() >= len(DECISIONS) - 2  # some buckets share a bar
            await expect(page.get_by_test_id(f"lag-{group}")).to_have_text("4")
            # the ingest's own webhooks: counted, a rate and a latency from its histogram
            chips = page.locator("#webhook-labels")
            await expect(chips).to_contain_text(f"accepted: {accepted}")
            await expect(page.get_by_test_id("webhook-chart").locator("path").first).to_be_visible()
            await expect(page.get_by_test_id("kpi-webhooks")).to_have_text(re.compile(r"[1-9]"))
            await expect(page.get_by_test_id("kpi-latency")).to_have_text(re.compile(r"\d+ ms"))
            await expect(page.get_by_test_id("delivery")).to_contain_text("delivered")
            # declined work followed up and brought back: counts, dollars, per location
            await expect(page.get_by_test_id("declined-followed")).to_have_text("3")
            await expect(page.get_by_test_id("declined-followed-value")).to_have_text(
                "$1,500.00 declined"
            )
            await expect(page.get_by_test_id("declined-back")).to_have_text("1")
            await expect(page.get_by_test_id("declined-back-value")).to_contain_text("$450.50")
            await expect(page.get_by_test_id("declined-ratio")).to_have_text("30.0%")
            declined_row = page.get_by_test_id("declined-locations").locator(
                f'tr[data-tenant="{tenant.id}"]'
            )
            await expect(declined_row.locator("td").first).to_have_text(HOSTILE_NAME)
            await expect(declined_row.locator('[data-field="back-value"]')).to_have_text("$450.50")
            # data is text, never markup
            row = page.get_by_test_id("locations").locator(f'tr[data-tenant="{tenant.id}"]')
            await expect(row.locator("td").first).to_have_text(HOSTILE_NAME)
            assert await page.evaluate("window.__xss") is None
            assert await page.locator("img").count() == 0

            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOT), full_page=True)

            # live update: new leads, a new send and more webhooks show up without a reload
            async with db_engine.begin() as conn:
                for _ in range(2):
                    lead = await add_lead(conn, tenant.id, "new", created_minutes_ago=1)
                await add_job(conn, tenant.id, lead, "sent", "accepted", decided_minutes_ago=0.5)
            await send_webhooks(base, sim, company, 2)
            await expect(page.get_by_test_id("funnel-count-new")).to_have_text("7")
            await expect(page.get_by_test_id("kpi-leads")).to_have_text("17")
            await expect(page.get_by_test_id("kpi-sent")).to_have_text("5")
            await expect(chips).to_contain_text(f"accepted: {accepted_so_far()}")

            # overall view: every location, this one among them
            await page.get_by_test_id("tenant-select").select_option("all")
            await expect(page.get_by_test_id("funnel-scope")).to_have_text("all locations")
            await expect(row).to_be_visible()
            # signing out ends it: the page asks for a sign-in again
            await page.get_by_test_id("sign-out").click()
            await expect(page.get_by_test_id("sign-in-form")).to_be_visible()
            await page.goto(f"{admin}/dashboard/")
            await expect(page.get_by_test_id("sign-in-form")).to_be_visible()
            # the wrong password's page and the poll after signing out are answered 401
            unexpected = [e for e in errors if "status of 401" not in e]
            assert not unexpected, unexpected
        finally:
            await browser.close()
            await sim.stop()
