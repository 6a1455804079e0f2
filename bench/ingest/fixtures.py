"""Fixtures of the ingest benchmark: its own migrated database, Shopmonkey companies (webhook
secrets) of several locations (tenants), and distinct, validly signed Shopmonkey order webhooks
of their locations as raw HTTP/1.1 requests, to each company's URL or each location's."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fakes.shopmonkey.webhooks import standard_signature

BENCH_DB = "lo_bench_ingest"


@dataclass(frozen=True)
class BenchTenant:
    tenant_id: str
    company_id: str
    location_id: str
    secret: str  # its company's


def add_tenants(
    db_url: str, count: int, *, per_company: int = 5, timezone: str = "America/New_York"
) -> list[BenchTenant]:
    """`count` tenants, `per_company` locations of each company (one webhook secret each),
    written through the services' own functions (the secrets' one adapter)."""
    return asyncio.run(_add_tenants(db_url, count, per_company, timezone))


async def _add_tenants(
    db_url: str, count: int, per_company: int, timezone: str
) -> list[BenchTenant]:
    from bench.common import secret_box
    from services.common.db.companies import add_company
    from services.common.db.engine import async_engine
    from services.common.db.tenants import add_tenant

    tenants: list[BenchTenant] = []
    engine = async_engine("postgresql+psycopg://" + db_url.split("://", 1)[1], pool_size=1)
    try:
        async with engine.begin() as conn:
            for i in range(count):
                if i % per_company == 0:
                    company = await add_company(
                        conn,
                        box=secret_box(),
                        company_id=f"co_b{uuid.uuid4().hex[:10]}",
                        name=f"Bench company {i // per_company}",
                    )
                tid = uuid.uuid4()
                await add_tenant(
                    conn,
                    tenant_id=tid,
                    name=f"Bench location {i}",
                    company_id=company.id,
                    location_id=f"loc_b{tid.hex[:8]}",
                    timezone=timezone,
                    postal_address="1 Main St, Springfield, IL 62701",  # emails need one
                )
                assert company.webhook_secret
                tenants.append(
                    BenchTenant(str(tid), company.id, f"loc_b{tid.hex[:8]}", company.webhook_secret)
                )
    finally:
        await engine.dispose()
    return tenants


def order_document(
    order_id: str,
    *,
    number: int,
    customer_id: str,
    email: str,
    company_id: str,
    location_id: str,
    phone: str = "+12025550140",
) -> dict[str, Any]:
    """A Shopmonkey v3 order INSERT webhook body of `location_id` (of `company_id`): an
    estimate with its customer embedded (no customer look-up needed), created now."""
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "apiVersion": "3",
        "operation": "INSERT",
        "table": "order",
        "data": {
            "id": order_id,
            "number": str(number),
            "companyId": company_id,
            "locationId": location_id,
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
                "phoneNumbers": [{"number": phone, "primary": True}],
            },
            "meta": {"userId": "usr_bench", "sessionId": "ses_bench", "version": 1},
        },
    }


def webhook_requests(
    tenants: list[BenchTenant], count: int, *, route: str = "location"
) -> list[bytes]:
    """`count` distinct, validly signed order INSERT deliveries, round-robin over tenants,
    each to its location's URL (`route="location"`) or its company's (`"company"`)."""
    stamp = int(time.time())
    out = []
    for i in range(count):
        tenant = tenants[i % len(tenants)]
        order_id = str(uuid.uuid4())
        doc = order_document(
            order_id,
            number=1000 + i,
            customer_id=f"cus_{i}",
            email=f"jane.{i}@example.net",
            company_id=tenant.company_id,
            location_id=tenant.location_id,
            # customers have their own numbers (1,000 in turn, so the parsed numbers stay
            # cached as a location's returning customers do): one number shared by all made
            # every consent batch a statement per webhook (a contact at most once a statement)
            phone=f"+1202{2_000_000 + i % 1000:07d}",
        )
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
