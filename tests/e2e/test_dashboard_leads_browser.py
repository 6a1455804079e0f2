"""Leads (and what keeps a location from sending) in the dashboard, in headless Chromium
(Debian's, driven by Playwright) on the real ingest with real PostgreSQL and Kafka: an operator
searches by keyboard, opens a lead, stops its sequence with a reason, and sees the stop (who and
why) in the lead's Kafka timeline; the read model is not written by the dashboard (the
sequencer's projection does that)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.topics import Topics
from tests.conftest import free_port
from tests.e2e.test_dashboard_browser import (  # noqa: F401 (chromium: the module's fixture)
    CHROMIUM,
    CHROMIUM_ARGS,
    chromium,
    open_dashboard,
    running_ingest,
)
from tests.support.operators import add_account
from tests.support.read_model_rows import add_job, add_lead

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


async def test_search_open_stop_and_see_the_stop_in_the_timeline(
    service_env: dict[str, str],
    db_engine: AsyncEngine,
    make_tenant: Callable[..., Awaitable[tuple[Any, str]]],
    topics: Topics,
) -> None:
    tenant, _ = await make_tenant(name="Keyboard Motors")
    other, _ = await make_tenant(name="Elsewhere Autos")
    tag = uuid.uuid4().hex[:6]
    async with db_engine.begin() as conn:
        lead = await add_lead(
            conn, tenant.id, "contacted", first_name=f"Zelda{tag}", email=f"zq.{tag}@example.net"
        )
        await add_job(conn, tenant.id, lead, "sent", "accepted", recipient=f"zq.{tag}@example.net")
        await add_lead(conn, tenant.id, "new", first_name=f"Other{tag}")
        await add_lead(conn, other.id, "new", first_name=f"Zelda{tag}")  # not this operator's
    operator = await add_account(db_engine, role="location", tenants=[tenant.id])
    api_base = f"http://127.0.0.1:{free_port()}/v3"
    async with running_ingest(api_base) as (_, admin), async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page, errors = await open_dashboard(
                browser, f"{admin}/dashboard/", operator, viewer_text="your locations"
            )
            # what keeps its location from sending (no hours, no key); not the other location
            health = page.get_by_test_id("health")
            await expect(health).to_contain_text("Keyboard Motors")
            await expect(health).to_contain_text("no opening hours")
            await expect(health).not_to_contain_text("Elsewhere Autos")
            # search by keyboard: type, Enter; prefix and any case; only its own location
            await page.get_by_test_id("lead-q").fill(f"zELDA{tag}")
            await page.get_by_test_id("lead-q").press("Enter")
            links = page.get_by_test_id("lead-link")
            await expect(links).to_have_count(1)
            await expect(page.get_by_test_id("lead-results")).to_contain_text("Keyboard Motors")
            await expect(page.get_by_test_id("lead-results")).not_to_contain_text(
                f"zq.{tag}@example.net"  # masked: not a whitelisted address
            )
            await links.first.focus()
            await page.keyboard.press("Enter")
            lead_page = page.get_by_test_id("lead-page")
            await expect(lead_page).to_be_visible()
            await expect(lead_page).to_be_focused()
            facts = page.get_by_test_id("lead-facts")
            await expect(facts.locator('[data-fact="state"]')).to_have_text("contacted")
            await expect(facts.locator('[data-fact="sequence"]')).to_have_text("running")
            await expect(page.get_by_test_id("lead-touchpoints")).to_contain_text("accepted")

            # an action needs a reason; with one, the stop goes to Kafka and shows in the timeline
            await page.get_by_test_id("act-stop").click()
            await expect(page.get_by_test_id("lead-act-result")).to_have_text("Say why first")
            await page.get_by_test_id("lead-reason").fill("customer called: stop")
            await page.get_by_test_id("act-stop").click()
            await expect(page.get_by_test_id("lead-act-result")).to_contain_text(
                f"stop sent by {operator.email}"
            )
            stop = page.get_by_test_id("lead-timeline").locator('li[data-kind="signal"]')
            await expect(stop).to_contain_text("sequence_stopped via dashboard")
            await expect(stop).to_contain_text(f"{operator.email}: customer called: stop")
            unexpected = [e for e in errors if "status of 401" not in e]  # the wrong password
            assert not unexpected, unexpected
        finally:
            await browser.close()
    async with db_engine.connect() as conn:
        stopped = await conn.execute(
            text("SELECT sequence_stopped FROM leads WHERE lead_id = :lead"), {"lead": lead}
        )
        assert stopped.scalar_one() is False  # the dashboard emitted a signal, wrote nothing
