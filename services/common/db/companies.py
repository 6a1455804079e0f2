"""Shopmonkey companies (connection passed in, keyword-only arguments): the one place that reads
and writes their secrets (API key, webhook secret).

The secrets are encrypted at rest (Fernet under SECRETS_ENCRYPTION_KEYS, `secret_box`): every
function that stores or returns one takes the `box`; the columns hold only Fernet tokens, and a
decrypted value lives in a `CompanyRecord`, whose repr leaves it out. `rotate_secrets`
re-encrypts every stored secret under the newest key (`leadctl secrets rotate`).

A company holds what Shopmonkey issues per company (the API key, the webhook signing secret);
its locations are tenants (`db.tenants`). `company_with_tenants` and `companies_with_tenants`
read a company together with its locations, as ingest routes and polls by company.
"""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db.models import ShopmonkeyCompany, Tenant
from services.common.db.tenants import TenantRecord, tenant_record
from services.common.secret_box import SecretBox, SecretUndecryptable


@dataclass(frozen=True, slots=True)
class CompanyRecord:
    """A company as the services use it. Secrets stay out of `repr`."""

    id: str
    name: str
    signature_scheme: str
    active: bool
    shopmonkey_api_key: str | None = None
    webhook_secret: str | None = None

    def __repr__(self) -> str:
        return f"CompanyRecord(id={self.id!r}, name={self.name!r}, active={self.active})"


@dataclass(frozen=True, slots=True)
class CompanySummary:
    """A company as listed to operators: whether its secrets are set, never what they are."""

    id: str
    name: str
    signature_scheme: str
    active: bool
    has_api_key: bool
    has_webhook_secret: bool


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: `whsec_` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _open(box: SecretBox, token: str | None) -> str | None:
    return box.decrypt(token) if token else None


def _seal(box: SecretBox, value: str | None) -> str | None:
    return box.encrypt(value) if value else None


def _record(row: Any, box: SecretBox) -> CompanyRecord:
    return CompanyRecord(
        id=row.id,
        name=row.name,
        signature_scheme=row.signature_scheme,
        active=row.active,
        shopmonkey_api_key=_open(box, row.shopmonkey_api_key),
        webhook_secret=_open(box, row.webhook_secret),
    )


async def add_company(
    conn: AsyncConnection,
    *,
    box: SecretBox,
    company_id: str,
    name: str,
    api_key: str | None = None,
    webhook_secret: str | None = None,
    signature_scheme: str = "standard",
) -> CompanyRecord:
    """Create a company (its secrets stored encrypted); a webhook secret is generated when
    none is given."""
    values = {
        "id": company_id,
        "name": name,
        "shopmonkey_api_key": _seal(box, api_key),
        "webhook_secret": _seal(box, webhook_secret or new_webhook_secret()),
        "signature_scheme": signature_scheme,
    }
    row = (
        await conn.execute(insert(ShopmonkeyCompany).values(**values).returning(ShopmonkeyCompany))
    ).one()
    return _record(row, box)


async def get_company(
    conn: AsyncConnection, *, box: SecretBox, company_id: str
) -> CompanyRecord | None:
    stmt = select(ShopmonkeyCompany).where(ShopmonkeyCompany.id == company_id)
    row = (await conn.execute(stmt)).one_or_none()
    return _record(row, box) if row else None


async def set_secrets(
    conn: AsyncConnection,
    *,
    box: SecretBox,
    company_id: str,
    api_key: str | None,
    webhook_secret: str,
) -> None:
    """Replace a company's API key and webhook secret (stored encrypted with `box`)."""
    await conn.execute(
        update(ShopmonkeyCompany)
        .where(ShopmonkeyCompany.id == company_id)
        .values(shopmonkey_api_key=_seal(box, api_key), webhook_secret=_seal(box, webhook_secret))
    )


async def company_exists(conn: AsyncConnection, *, company_id: str) -> bool:
    stmt = select(ShopmonkeyCompany.id).where(ShopmonkeyCompany.id == company_id)
    return (await conn.execute(stmt)).first() is not None


async def list_companies(conn: AsyncConnection) -> list[CompanySummary]:
    """Every company, secrets left out (nothing is decrypted)."""
    stmt = select(ShopmonkeyCompany).order_by(ShopmonkeyCompany.name, ShopmonkeyCompany.id)
    return [
        CompanySummary(
            id=r.id,
            name=r.name,
            signature_scheme=r.signature_scheme,
            active=r.active,
            has_api_key=bool(r.shopmonkey_api_key),
            has_webhook_secret=bool(r.webhook_secret),
        )
        for r in (await conn.execute(stmt)).all()
    ]


async def rotate_secrets(conn: AsyncConnection, *, box: SecretBox) -> int:
    """Re-encrypt every stored secret under the first key of `box` (each must decrypt under
    one of its keys, else `SecretUndecryptable` and nothing is changed by the caller's
    transaction); returns how many companies were rewritten."""
    rows = (
        await conn.execute(
            select(
                ShopmonkeyCompany.id,
                ShopmonkeyCompany.shopmonkey_api_key,
                ShopmonkeyCompany.webhook_secret,
            ).with_for_update()
        )
    ).all()
    changed = 0
    for company_id, api_key, secret in rows:
        if not api_key and not secret:
            continue
        await conn.execute(
            update(ShopmonkeyCompany)
            .where(ShopmonkeyCompany.id == company_id)
            .values(
                shopmonkey_api_key=box.rotate(api_key) if api_key else None,
                webhook_secret=box.rotate(secret) if secret else None,
            )
        )
        changed += 1
    return changed


async def company_with_tenants(
    conn: AsyncConnection,
    *,
    box: SecretBox,
    company_id: str | None = None,
    tenant_id: uuid.UUID | None = None,
) -> tuple[CompanyRecord, list[TenantRecord]] | None:
    """An active company and its active tenants, named by its id or by one of its tenants'
    (None: no such active company)."""
    stmt = select(ShopmonkeyCompany).where(ShopmonkeyCompany.active.is_(True))
    if company_id is not None:
        stmt = stmt.where(ShopmonkeyCompany.id == company_id)
    else:
        owner = select(Tenant.shopmonkey_company_id).where(Tenant.id == tenant_id)
        stmt = stmt.where(ShopmonkeyCompany.id == owner.scalar_subquery())
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        return None
    tenants = select(Tenant).where(Tenant.shopmonkey_company_id == row.id, Tenant.active.is_(True))
    found = (await conn.execute(tenants.order_by(Tenant.id))).all()
    return _record(row, box), [tenant_record(t) for t in found]


async def companies_with_tenants(
    conn: AsyncConnection,
    *,
    box: SecretBox,
    with_empty: bool = False,
    refused: list[str] | None = None,
) -> list[tuple[CompanyRecord, list[TenantRecord]]]:
    """Every active company with its active tenants (companies without one left out, unless
    `with_empty`). A company whose secrets do not decrypt raises SecretUndecryptable, or, with
    a `refused` list, is left out and its id appended there."""
    active = select(ShopmonkeyCompany).where(ShopmonkeyCompany.active.is_(True))
    companies: dict[str, CompanyRecord] = {}
    for company in (await conn.execute(active)).all():
        try:
            companies[company.id] = _record(company, box)
        except SecretUndecryptable:
            if refused is None:
                raise
            refused.append(company.id)
    stmt = select(Tenant).where(Tenant.active.is_(True)).order_by(Tenant.id)
    tenants: dict[str, list[TenantRecord]] = {cid: [] for cid in companies} if with_empty else {}
    for row in (await conn.execute(stmt)).all():
        if row.shopmonkey_company_id in companies:
            tenants.setdefault(row.shopmonkey_company_id, []).append(tenant_record(row))
    return [(companies[cid], found) for cid, found in sorted(tenants.items())]
