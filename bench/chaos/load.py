"""Steady load for the chaos suite: distinct, validly signed Shopmonkey order webhooks (Standard
Webhooks) at a fixed rate, each retried as Shopmonkey would (the same delivery id, body and
signature) after a 5xx or a refused connection, until it gets a 2xx. Every webhook keeps when
it was first sent, each answer and the lead id of its 2xx."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field

import aiohttp

from bench.ingest.fixtures import BenchTenant, order_document
from fakes.shopmonkey.webhooks import standard_signature

#: A webhook still without a 2xx after this long is given up (counted, never silently lost).
GIVE_UP_SECONDS = 600.0


@dataclass
class Webhook:
    tenant: BenchTenant
    order_id: str
    first_at: float  # epoch seconds of the first attempt
    statuses: list[int] = field(default_factory=list)  # 0 = no answer (refused, timeout)
    ok_at: float | None = None
    lead_id: str | None = None

    @property
    def event_id(self) -> str:
        return f"shopmonkey:order:{self.order_id}:1"


def order_body(tenant: BenchTenant, order_id: str, number: int, email: str) -> bytes:
    doc = order_document(
        order_id,
        number=number,
        customer_id=f"cus_{order_id[:12]}",
        email=email,
        company_id=tenant.company_id,
        location_id=tenant.location_id,
    )
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass
class WebhookLoad:
    base_url: str
    tenants: list[BenchTenant]
    email: str
    sent: list[Webhook] = field(default_factory=list)
    answered_503: int = 0

    async def _deliver(self, http: aiohttp.ClientSession, hook: Webhook) -> None:
        body = order_body(hook.tenant, hook.order_id, len(self.sent), self.email)
        secret = hook.tenant.secret
        msg_id, stamp = f"msg_{secrets.token_hex(12)}", int(hook.first_at)
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": standard_signature(secret, msg_id, stamp, body),
        }
        url = f"{self.base_url}/webhooks/shopmonkey/{hook.tenant.tenant_id}/order"
        while time.time() - hook.first_at < GIVE_UP_SECONDS:
            wait = 1.0
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    hook.statuses.append(resp.status)
                    if resp.status < 300:
                        hook.lead_id = (await resp.json()).get("leadId")
                        hook.ok_at = time.time()
                        return
                    if resp.status == 503:
                        self.answered_503 += 1
                    if resp.status < 500 and resp.status != 429:
                        return  # refused for good: counted as such by the figures
                    wait = float(resp.headers.get("Retry-After") or 1.0)
            except (aiohttp.ClientError, TimeoutError):
                hook.statuses.append(0)
            await asyncio.sleep(min(wait, 5.0))

    async def run(self, rate: float, seconds: float, *, at_start: float | None = None) -> None:
        """Send `rate` webhooks per second for `seconds`, then wait for every retry."""
        timeout = aiohttp.ClientTimeout(total=30)
        connector = aiohttp.TCPConnector(limit=400)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
            tasks = []
            start = at_start or time.monotonic()
            count = int(rate * seconds)
            for i in range(count):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                hook = Webhook(self.tenants[i % len(self.tenants)], str(uuid.uuid4()), time.time())
                self.sent.append(hook)
                tasks.append(asyncio.create_task(self._deliver(http, hook)))
            await asyncio.gather(*tasks)
