"""Operator accounts (connection passed in, keyword-only arguments): who may sign in to the
dashboard and which locations each sees. Credentials arrive here already hashed
(`services.common.passwords`); every change of a credential or of `active` bumps
`session_epoch`, which ends every session signed before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from services.common.db.models import Operator as OperatorRow
from services.common.db.models import OperatorTenant
from services.common.domain.operators import Operator


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _record(row: Any, tenants: Iterable[uuid.UUID]) -> Operator:
    return Operator(
        id=row.id,
        email=row.email,
        role=row.role,
        active=row.active,
        session_epoch=row.session_epoch,
        tenant_ids=frozenset(tenants),
        password_hash=row.password_hash,
        token_hash=row.token_hash,
        last_sign_in_at=row.last_sign_in_at,
    )


async def _tenants_of(
    conn: AsyncConnection, ids: list[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    found: dict[uuid.UUID, set[uuid.UUID]] = {i: set() for i in ids}
    if ids:
        stmt = select(OperatorTenant.operator_id, OperatorTenant.tenant_id).where(
            OperatorTenant.operator_id.in_(ids)
        )
        for operator_id, tenant_id in (await conn.execute(stmt)).all():
            found[operator_id].add(tenant_id)
    return found


async def add_operator(
    conn: AsyncConnection,
    *,
    email: str,
    role: str,
    tenant_ids: Iterable[uuid.UUID] = (),
    password_hash: str | None = None,
    token_hash: str | None = None,
    operator_id: uuid.UUID | None = None,
) -> Operator:
    """Create an account; a `location` operator sees exactly `tenant_ids` (at least one)."""
    tenants = sorted(set(tenant_ids))
    if role == "location" and not tenants:
        raise ValueError("a location operator needs at least one tenant")
    if role == "hq" and tenants:
        raise ValueError("an hq operator sees every location: name no tenant")
    values = {
        "id": operator_id or uuid.uuid4(),
        "email": normalise_email(email),
        "role": role,
        "password_hash": password_hash,
        "token_hash": token_hash,
    }
    row = (await conn.execute(insert(OperatorRow).values(**values).returning(OperatorRow))).one()
    if tenants:
        await conn.execute(
            insert(OperatorTenant),
            [{"operator_id": row.id, "tenant_id": t} for t in tenants],
        )
    return _record(row, tenants)


async def get_operator(conn: AsyncConnection, *, operator_id: uuid.UUID) -> Operator | None:
    row = (
        await conn.execute(select(OperatorRow).where(OperatorRow.id == operator_id))
    ).one_or_none()
    if row is None:
        return None
    return _record(row, (await _tenants_of(conn, [row.id]))[row.id])


async def operator_by_email(conn: AsyncConnection, *, email: str) -> Operator | None:
    stmt = select(OperatorRow).where(OperatorRow.email == normalise_email(email))
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        return None
    return _record(row, (await _tenants_of(conn, [row.id]))[row.id])


async def list_operators(conn: AsyncConnection) -> list[Operator]:
    rows = (await conn.execute(select(OperatorRow).order_by(OperatorRow.email))).all()
    tenants = await _tenants_of(conn, [r.id for r in rows])
    return [_record(r, tenants[r.id]) for r in rows]


async def set_credentials(
    conn: AsyncConnection,
    *,
    email: str,
    password_hash: str | None = None,
    token_hash: str | None = None,
) -> Operator | None:
    """Replace the account's credentials (every earlier session ends); None: no such email."""
    return await _change(conn, email, password_hash=password_hash, token_hash=token_hash)


async def set_active(conn: AsyncConnection, *, email: str, active: bool) -> Operator | None:
    """Enable or disable the account (every earlier session ends); None: no such email."""
    return await _change(conn, email, active=active)


async def _change(conn: AsyncConnection, email: str, **values: Any) -> Operator | None:
    stmt = (
        update(OperatorRow)
        .where(OperatorRow.email == normalise_email(email))
        .values(**values, session_epoch=OperatorRow.session_epoch + 1, updated_at=func.now())
        .returning(OperatorRow)
    )
    row = (await conn.execute(stmt)).one_or_none()
    if row is None:
        return None
    return _record(row, (await _tenants_of(conn, [row.id]))[row.id])


async def record_sign_in(conn: AsyncConnection, *, operator_id: uuid.UUID) -> None:
    await conn.execute(
        update(OperatorRow).where(OperatorRow.id == operator_id).values(last_sign_in_at=func.now())
    )
