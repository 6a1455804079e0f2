"""Fixtures of the ingest benchmark: its own migrated database, tenants with webhook
secrets, and distinct, validly signed Shopmonkey order webhooks as raw HTTP/1.1 requests."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg

from fakes.shopmonkey.webhooks import standard_signature

BENCH_DB = "lo_bench_ingest"


def add_tenants(db_url: str, count: int) -> list[tuple[str, str]]:
    from services.common.db.tenants import new_webhook_secret

    tenants = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(count):
            tid, secret = str(uuid.uuid4()), new_webhook_secret()
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
                " webhook_secret) VALUES (%s, %s, %s, %s, %s)",
                (tid, f"Bench location {i}", f"co_b{tid[:8]}", f"loc_b{tid[:8]}", secret),
            )
            tenants.append((tid, secret))
    return tenants


def order_document(order_id: str, *, number: int, customer_id: str, email: str) -> dict[str, Any]:
    """A Shopmonkey v3 order INSERT webhook body: an estimate with its customer embedded (no
    customer look-up needed), created now."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "apiVersion": "3",
        "operation": "INSERT",
        "table": "order",
        "data": {
            "id": order_id,
            "number": str(number),
            "companyId": "co_bench",
            "locationId": "loc_bench",
            "customerId": customer_id,
            "status": "Estimate",
            "createdDate": now,
            "updatedDate": None,
            "totalCostCents": 42_000,
            "authorized": False,
            "invoiced": False,
            "paid": False,
            "archived": False,
            "deleted": False,
            "generatedCustomerName": "Jane Doe",
            "generatedVehicleName": "2019 Honda Civic",
            "customer": {
                "id": customer_id,
                "firstName": "Jane",
                "lastName": "Doe",
                "emails": [{"email": email, "primary": True}],
                "phoneNumbers": [{"number": "+15550100000", "primary": True}],
            },
            "meta": {"userId": "usr_bench", "sessionId": "ses_bench", "version": 1},
        },
    }


def webhook_requests(tenants: list[tuple[str, str]], count: int) -> list[bytes]:
    """`count` distinct, validly signed order INSERT deliveries, round-robin over tenants."""
    stamp = int(time.time())
    out = []
    for i in range(count):
        tid, secret = tenants[i % len(tenants)]
        order_id = str(uuid.uuid4())
        doc = order_document(
            order_id, number=1000 + i, customer_id=f"cus_{i}", email=f"jane.{i}@example.net"
        )
        body = json.dumps(doc, separators=(",", ":")).encode()
        msg_id = f"msg_{secrets.token_hex(12)}"
        head = (
            f"POST /webhooks/shopmonkey/{tid}/order HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"User-Agent: Shopmonkey (+https://shopmonkey.io)\r\nX-Attempt: 1\r\n"
            f"webhook-id: {msg_id}\r\nwebhook-timestamp: {stamp}\r\nwebhook-version: 3\r\n"
            f"webhook-signature: {standard_signature(secret, msg_id, stamp, body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out
