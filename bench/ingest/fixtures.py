"""Fixtures of the ingest benchmark: its own migrated database, Shopmonkey companies (webhook
secrets) of several locations (tenants), and distinct, validly signed Shopmonkey order webhooks
of their locations as raw HTTP/1.1 requests, to each company's URL or each location's."""

from __future__ import annotations

import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from fakes.shopmonkey.webhooks import standard_signature

BENCH_DB = "lo_bench_ingest"


@dataclass(frozen=True)
class BenchTenant:
    tenant_id: str
    company_id: str
    location_id: str
    secret: str  # its company's


def add_tenants(db_url: str, count: int, *, per_company: int = 5) -> list[BenchTenant]:
    """`count` tenants, `per_company` locations of each company (one webhook secret each)."""
    from services.common.db.companies import new_webhook_secret

    tenants: list[BenchTenant] = []
    with psycopg.connect(db_url, autocommit=True) as conn:
        for i in range(count):
            if i % per_company == 0:
                company, secret = f"co_b{uuid.uuid4().hex[:10]}", new_webhook_secret()
                conn.execute(
                    "INSERT INTO shopmonkey_companies (id, name, webhook_secret)"
                    " VALUES (%s, %s, %s)",
                    (company, f"Bench company {i // per_company}", secret),
                )
            tid = str(uuid.uuid4())
            location = f"loc_b{tid[:8]}"
            conn.execute(
                "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id)"
                " VALUES (%s, %s, %s, %s)",
                (tid, f"Bench location {i}", company, location),
            )
            tenants.append(BenchTenant(tid, company, location, secret))
    return tenants


def webhook_requests(
    tenants: list[BenchTenant], count: int, *, route: str = "location"
) -> list[bytes]:
    """`count` distinct, validly signed order INSERT deliveries, round-robin over tenants,
    each to its location's URL (`route="location"`) or its company's (`"company"`)."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    stamp = int(time.time())
    out = []
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        order_id = str(uuid.uuid4())
        doc = {
            "apiVersion": "3",
            "operation": "INSERT",
            "table": "order",
            "data": {
                "id": order_id,
                "number": str(1000 + i),
                "companyId": tenant.company_id,
                "locationId": tenant.location_id,
                "customerId": f"cus_{i}",
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
                    "id": f"cus_{i}",
                    "firstName": "Jane",
                    "lastName": "Doe",
                    "emails": [{"email": f"jane.{i}@example.net", "primary": True}],
                    "phoneNumbers": [{"number": "+15550100000", "primary": True}],
                },
                "meta": {"userId": "usr_bench", "sessionId": "ses_bench", "version": 1},
            },
        }
        body = json.dumps(doc, separators=(",", ":")).encode()
        msg_id = f"msg_{secrets.token_hex(12)}"
        path = (
            f"/webhooks/shopmonkey/companies/{tenant.company_id}/order"
            if route == "company"
            else f"/webhooks/shopmonkey/{tenant.tenant_id}/order"
        )
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"User-Agent: Shopmonkey (+https://shopmonkey.io)\r\nX-Attempt: 1\r\n"
            f"webhook-id: {msg_id}\r\nwebhook-timestamp: {stamp}\r\nwebhook-version: 3\r\n"
            f"webhook-signature: {standard_signature(tenant.secret, msg_id, stamp, body)}"
            "\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out
