"""Webhook deliveries signed like Shopmonkey v3 (Standard Webhooks headers, reference §1.1–1.2)
and retried like Shopmonkey's delivery client (§1.4): on 408, 429, 5xx and connection errors,
at most 4 attempts, 50 ms·2^attempt capped at 10 s, honouring `Retry-After`, `X-Attempt`
counting from 1, a new `X-Request-Id` per attempt and the same `webhook-id` throughout.

Every delivery is signed with its company's secret. The URL template says which webhook
Shopmonkey delivers to (reference §3): with `{tenant_id}` or `{location_id}` one registered per
location (a customer change goes to its first location), with `{company_id}` only the
company-global one (no `locationId`), which gets every location's changes.

The signing code here is deliberately independent of services/ingest's verifier."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import random
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from fakes.shopmonkey.data import Company, Location

log = logging.getLogger(__name__)
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
USER_AGENT = "Shopmonkey (+https://shopmonkey.io)"


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def legacy_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    company: Company,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
    attempt: int = 1,
) -> dict[str, str]:
    """Every header a Shopmonkey v3 delivery carries, signed with the company's secret."""
    msg_id = msg_id or f"msg_{secrets.token_hex(12)}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Attempt": str(attempt),
        "X-Request-Id": f"{attempt}/{secrets.token_hex(8)}",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-version": "3",
    }
    if company.signature_scheme == "legacy_hmac":
        headers["X-Shopmonkey-Signature"] = legacy_signature(company.webhook_secret, body)
    else:
        headers["webhook-signature"] = standard_signature(
            company.webhook_secret, msg_id, timestamp, body
        )
    return headers


def envelope(
    table: str, operation: str, data: dict[str, Any], diff: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "3", "operation": operation, "table": table}
    body["data"] = data
    if diff is not None:
        body["diff"] = diff
    return body


@dataclass
class Delivery:
    seq: int
    tenant_id: str
    company_id: str
    msg_id: str
    table: str
    operation: str
    record_id: str
    attempts: list[dict[str, Any]] = field(default_factory=list)
    delivered: bool = False
    dropped: bool = False
    response: Any = None


class WebhookSender:
    """Delivers envelopes to `url_template` ({tenant_id}, {company_id}, {location_id})."""

    def __init__(
        self,
        url_template: str,
        *,
        max_attempts: int = 4,
        base_delay: float = 0.05,
        max_delay: float = 10.0,
        timeout: float = 10.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.url_template = url_template
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.drop_rate = drop_rate
        self.rng = random.Random(seed)
        self.deliveries: list[Delivery] = []
        self._seq = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def company_global(self) -> bool:
        """Whether the URL names the company only (its company-global webhook)."""
        return not any(f"{{{n}}}" in self.url_template for n in ("tenant_id", "location_id"))

    def url_for(self, company: Company, location: Location | None = None) -> str:
        location = location or company.locations[0]
        return self.url_template.format(
            tenant_id=location.tenant_id,
            company_id=company.company_id,
            location_id=location.location_id,
        )

    async def send(
        self, company: Company, doc: dict[str, Any], *, location: Location | None = None
    ) -> Delivery:
        """Deliver `doc` of `company` (a change at `location`: default its first)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        body = json.dumps(doc, separators=(",", ":")).encode()
        delivery = Delivery(
            seq=next(self._seq),
            tenant_id=str((location or company.locations[0]).tenant_id),
            company_id=company.company_id,
            msg_id=f"msg_{secrets.token_hex(12)}",
            table=doc.get("table", ""),
            operation=doc.get("operation", ""),
            record_id=str((doc.get("data") or {}).get("id")),
        )
        self.deliveries.append(delivery)
        if self.drop_rate and self.rng.random() < self.drop_rate:
            delivery.dropped = True  # "missed webhook": only the poller will see this change
            return delivery
        url = self.url_for(company, location)
        for attempt in range(1, self.max_attempts + 1):
            headers = signed_headers(company, body, msg_id=delivery.msg_id, attempt=attempt)
            retry_after: float | None = None
            try:
                async with self._session.post(url, data=body, headers=headers) as resp:
                    text = await resp.text()
                    status: int | str = resp.status
                    header = resp.headers.get("Retry-After")
                    retry_after = float(header) if header and header.isdigit() else None
            except (TimeoutError, aiohttp.ClientError) as exc:
                status, text = f"error:{type(exc).__name__}", ""
            delivery.attempts.append({"attempt": attempt, "status": status})
            if isinstance(status, int) and status not in RETRY_STATUSES:
                delivery.delivered = 200 <= status < 300
                try:
                    delivery.response = json.loads(text) if text else None
                except ValueError:
                    delivery.response = text
                return delivery
            if attempt < self.max_attempts:
                wait = min(self.base_delay * 2**attempt, self.max_delay)
                if retry_after is not None:
                    wait = min(max(wait, retry_after), self.max_delay)
                await asyncio.sleep(wait)
        log.warning("webhook %s gave up after %d attempts", delivery.msg_id, self.max_attempts)
        return delivery
