"""A tenant's plans in PostgreSQL: the plan in force (what the tenant's row says, which the
sequencer follows now) with its version, the versions before it, and storing a new version
(`plan_versions`, migration 0014) while keeping `tenants.nurture_plan` /
`tenants.campaign_plans` equal to the latest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from leadctl.plans.validate import NURTURE

#: When a plan a tenant had before its first version counts from (as migration 0014 does).
SINCE_ALWAYS = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


class NoTenant(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Version:
    version: int
    valid_from: datetime
    set_by: str
    document: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Stored:
    """What a tenant has for one kind of plan."""

    tenant_name: str
    row: Any  # the tenant row's document for it (None: nothing set, the default)
    versions: tuple[Version, ...]  # oldest first

    @property
    def current(self) -> Version | None:
        """The latest version, when the tenant's row still says what it says."""
        if self.versions and self.versions[-1].document == self.row:
            return self.versions[-1]
        return None


def _row_document(kind: str, nurture_plan: Any, campaign_plans: Any) -> Any:
    if kind == NURTURE:
        return nurture_plan
    return campaign_plans.get(kind) if isinstance(campaign_plans, dict) else None


async def stored(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: str, *, lock: bool = False
) -> Stored:
    sql = "SELECT name, nurture_plan, campaign_plans FROM tenants WHERE id = :t"
    row = (
        await conn.execute(text(sql + (" FOR UPDATE" if lock else "")), {"t": tenant_id})
    ).first()
    if row is None:
        raise NoTenant(f"no tenant {tenant_id}")
    rows = await conn.execute(
        text(
            "SELECT version, valid_from, set_by, document FROM plan_versions"
            " WHERE tenant_id = :t AND campaign = :k ORDER BY version"
        ),
        {"t": tenant_id, "k": kind},
    )
    versions = tuple(Version(r.version, r.valid_from, r.set_by, r.document) for r in rows)
    return Stored(row.name, _row_document(kind, row.nurture_plan, row.campaign_plans), versions)


_INSERT = text(
    "INSERT INTO plan_versions (tenant_id, campaign, version, document, valid_from, set_by)"
    " VALUES (:t, :k, :v, :doc, coalesce(:at, now()), :by)"
    " RETURNING valid_from"
).bindparams(bindparam("doc", type_=JSONB), bindparam("at", type_=DateTime(timezone=True)))


async def store(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: str, document: dict[str, Any], set_by: str
) -> Version:
    """Store `document` as the tenant's new version of `kind`, in force from now, and write it
    to the tenant's row. In the caller's transaction; the tenant's row is locked so two
    operators never get the same version number. A plan the row held without any version
    (set before versions existed) becomes version 1, in force since always."""
    now = await stored(conn, tenant_id, kind, lock=True)
    number = now.versions[-1].version if now.versions else 0
    if not now.versions and now.row is not None:
        number = 1
        await conn.execute(
            _INSERT,
            {"t": tenant_id, "k": kind, "v": 1, "doc": now.row, "at": SINCE_ALWAYS,
             "by": "before plan versions"},
        )  # fmt: skip
    valid_from = (
        await conn.execute(
            _INSERT,
            {"t": tenant_id, "k": kind, "v": number + 1, "doc": document, "at": None, "by": set_by},
        )
    ).scalar_one()
    if kind == NURTURE:
        update = text("UPDATE tenants SET nurture_plan = :doc, updated_at = now() WHERE id = :t")
        await conn.execute(
            update.bindparams(bindparam("doc", type_=JSONB)), {"t": tenant_id, "doc": document}
        )
    else:
        plans = await campaign_plans_with(conn, tenant_id, kind, document)
        update = text("UPDATE tenants SET campaign_plans = :doc, updated_at = now() WHERE id = :t")
        await conn.execute(
            update.bindparams(bindparam("doc", type_=JSONB)), {"t": tenant_id, "doc": plans}
        )
    return Version(number + 1, valid_from, set_by, document)


async def campaign_plans_with(
    conn: AsyncConnection, tenant_id: uuid.UUID, kind: str, document: dict[str, Any]
) -> dict[str, Any]:
    """The tenant's `campaign_plans` with `kind`'s part replaced by `document`."""
    current = (
        await conn.execute(
            text("SELECT campaign_plans FROM tenants WHERE id = :t"), {"t": tenant_id}
        )
    ).scalar_one_or_none()
    plans = dict(current) if isinstance(current, dict) else {}
    plans[kind] = document
    return plans
