"""What the attack tests share: an HTTP client with a chosen source address and a cookie jar
that keeps cookies of IP hosts, a lead in the read model, a signed Shopmonkey delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import insert

from services.common.db.models import Lead


def client(source: str = "127.0.0.1") -> aiohttp.ClientSession:
    """A session whose requests come from `source` (any 127.x address is this machine)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    )


async def add_lead(engine: Any, tenant_id: uuid.UUID, email: str) -> uuid.UUID:
    lead_id, now = uuid.uuid4(), datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            insert(Lead).values(
                lead_id=lead_id,
                tenant_id=tenant_id,
                state="contacted",
                source="webhook",
                version=1,
                email=email,
                created_at=now,
                updated_at=now,
            )
        )
    return lead_id


def signed_order(secret: str, tenant: Any, order_id: str) -> tuple[bytes, dict[str, str]]:
    """A Shopmonkey v3 order INSERT of the tenant's location, signed (Standard Webhooks)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    order = {
        "id": order_id,
        "number": int(order_id) if order_id.isdigit() else 1,
        "companyId": tenant.shopmonkey_company_id,
        "locationId": tenant.shopmonkey_location_id,
        "status": "Estimate",
        "createdDate": now,
        "updatedDate": now,
        "meta": {"version": 1},
    }
    body = json.dumps(
        {"apiVersion": "3", "operation": "INSERT", "table": "order", "data": order}
    ).encode()
    msg_id, stamp = f"msg_{secrets.token_hex(8)}", int(time.time())
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
    headers = {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    return body, headers
