"""Tenant (location) service functions: connection passed in, keyword-only arguments. A tenant
is one location of a Shopmonkey company (`db.companies`, which holds the company's secrets)."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db.models import LocationClosedDay, LocationHours, ServiceCatalog, Tenant


@dataclass(frozen=True, slots=True)
class TenantRecord:
    """A tenant as the services use it (its company's secrets: `db.companies`)."""

    id: uuid.UUID
    name: str
    shopmonkey_company_id: str
    shopmonkey_location_id: str
    timezone: str
    active: bool
    us_state: str | None
    postal_address: str | None
    phone: str | None
    nurture_plan: dict[str, Any] | None

    def __repr__(self) -> str:
        return f"TenantRecord(id={self.id}, name={self.name!r}, tz={self.timezone})"


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def tenant_record(row: Any) -> TenantRecord:
    """A `tenants` row as a record."""
    return TenantRecord(
        id=row.id,
        name=row.name,
        shopmonkey_company_id=row.shopmonkey_company_id,
        shopmonkey_location_id=row.shopmonkey_location_id,
        timezone=row.timezone,
        active=row.active,
        us_state=row.us_state,
        postal_address=row.postal_address,
        phone=row.phone,
        nurture_plan=row.nurture_plan,
    )


async def add_tenant(
    conn: AsyncConnection,
    *,
    name: str,
    company_id: str,
    location_id: str,
    timezone: str = "America/New_York",
    us_state: str | None = None,
    postal_address: str | None = None,
    phone: str | None = None,
    tenant_id: uuid.UUID | None = None,
) -> tuple[TenantRecord, str]:
    """Create a location of an existing company (`db.companies.add_company`); returns it and
    its website API key (shown once, stored hashed)."""
    website_key = "lk_" + secrets.token_urlsafe(24)
    values = {
        "id": tenant_id or uuid.uuid4(),
        "name": name,
        "shopmonkey_company_id": company_id,
        "shopmonkey_location_id": location_id,
        "timezone": timezone,
        "us_state": us_state,
        "postal_address": postal_address,
        "phone": phone,
        "website_api_key_sha256": hash_api_key(website_key),
    }
    row = (await conn.execute(insert(Tenant).values(**values).returning(Tenant))).one()
    return tenant_record(row), website_key


async def list_tenants(conn: AsyncConnection, *, active_only: bool = False) -> list[TenantRecord]:
    stmt = select(Tenant).order_by(Tenant.name)
    if active_only:
        stmt = stmt.where(Tenant.active.is_(True))
    return [tenant_record(r) for r in (await conn.execute(stmt)).all()]


async def get_tenant(conn: AsyncConnection, *, tenant_id: uuid.UUID) -> TenantRecord | None:
    row = (await conn.execute(select(Tenant).where(Tenant.id == tenant_id))).one_or_none()
    return tenant_record(row) if row else None


async def tenant_for_api_key(conn: AsyncConnection, *, api_key: str) -> TenantRecord | None:
    stmt = select(Tenant).where(
        Tenant.website_api_key_sha256 == hash_api_key(api_key), Tenant.active.is_(True)
    )
    row = (await conn.execute(stmt)).one_or_none()
    return tenant_record(row) if row else None


async def set_place(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, timezone: str, active: bool = True
) -> None:
    """Set a location's timezone and whether it is active (the demo moves its first location
    to where it is mid-day at each run)."""
    await conn.execute(
        update(Tenant).where(Tenant.id == tenant_id).values(timezone=timezone, active=active)
    )


async def set_campaigns(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    plans: dict[str, Any] | None,
    review_url: str | None,
) -> None:
    """A location's campaign plans (`tenants.campaign_plans`, as the sequencer parses them;
    None: every campaign off) and review URL."""
    await conn.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(campaign_plans=plans, review_url=review_url)
    )


async def set_closed_days(
    conn: AsyncConnection,
    *,
    tenant_id: uuid.UUID,
    add: Iterable[date] = (),
    remove: Iterable[date] = (),
) -> list[date]:
    """Mark days closed and open again; the location's closed days after the change."""
    gone = list(remove)
    if gone:
        await conn.execute(
            delete(LocationClosedDay).where(
                LocationClosedDay.tenant_id == tenant_id, LocationClosedDay.day.in_(gone)
            )
        )
    new = [{"tenant_id": tenant_id, "day": d} for d in sorted(set(add) - set(gone))]
    if new:
        await conn.execute(pg_insert(LocationClosedDay).values(new).on_conflict_do_nothing())
    rows = await conn.execute(
        select(LocationClosedDay.day)
        .where(LocationClosedDay.tenant_id == tenant_id)
        .order_by(LocationClosedDay.day)
    )
    return list(rows.scalars())


async def set_hours(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, hours: dict[int, tuple[time, time]]
) -> None:
    """Replace a location's weekly hours (weekday 0 = Monday)."""
    await conn.execute(delete(LocationHours).where(LocationHours.tenant_id == tenant_id))
    if hours:
        await conn.execute(
            insert(LocationHours),
            [
                {"tenant_id": tenant_id, "weekday": d, "opens_at": o, "closes_at": c}
                for d, (o, c) in sorted(hours.items())
            ],
        )


async def add_services(
    conn: AsyncConnection, *, tenant_id: uuid.UUID, services: list[tuple[str, str, int | None]]
) -> None:
    """Add (code, name, price_cents) entries to a location's service catalog."""
    if services:
        await conn.execute(
            insert(ServiceCatalog),
            [
                {"tenant_id": tenant_id, "code": c, "name": n, "price_cents": p}
                for c, n, p in services
            ],
        )
