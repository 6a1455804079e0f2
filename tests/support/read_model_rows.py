"""Rows of the read model for the ops tests (dashboard, `leadctl status`, `leads show`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.base import Channel, command_id_for
from services.common.db.models import JobExecution, Lead


def ago(minutes: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes)


async def add_lead(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    state: str,
    *,
    created_minutes_ago: float = 10,
    first_name: str = "Jane",
    email: str | None = "jane.doe@gmail.com",
    phone: str | None = "+12025550123",
    lead_id: uuid.UUID | None = None,
) -> uuid.UUID:
    lead_id = lead_id or uuid.uuid4()
    created = ago(created_minutes_ago)
    await conn.execute(
        insert(Lead).values(
            lead_id=lead_id,
            tenant_id=tenant_id,
            state=state,
            source="webhook",
            version=1,
            shopmonkey_order_id=f"ord_{lead_id.hex[:8]}",
            order_number="1001",
            first_name=first_name,
            last_name="Doe",
            email=email,
            phone=phone,
            vehicle="2019 Honda Civic",
            services=["Window tint"],
            created_at=created,
            updated_at=created,
        )
    )
    return lead_id


async def add_job(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    lead_id: uuid.UUID,
    status: str,
    reason: str | None,
    *,
    step_index: int = 0,
    channel: str = "email",
    decided_minutes_ago: float = 5,
    recipient: str | None = "jane.doe@gmail.com",
    provider_message_id: str | None = None,
    delivery_status: str | None = None,
    delivery_error: str | None = None,
) -> uuid.UUID:
    command_id = command_id_for(lead_id, step_index, Channel(channel))
    decided = ago(decided_minutes_ago)
    await conn.execute(
        insert(JobExecution).values(
            command_id=command_id,
            tenant_id=tenant_id,
            lead_id=lead_id,
            step_index=step_index,
            channel=channel,
            template="estimate_checkin",
            recipient=recipient,
            status=status,
            reason=reason,
            provider=("sendgrid" if channel == "email" else "twilio")
            if provider_message_id
            else None,
            provider_message_id=provider_message_id,
            delivery_status=delivery_status,
            delivery_error=delivery_error,
            delivery_updated_at=decided + timedelta(seconds=30) if delivery_status else None,
            attempts=1,
            due_at=decided,
            claimed_at=decided - timedelta(seconds=1),
            decided_at=None if status == "claimed" else decided,
            deferred_until=decided + timedelta(hours=10) if status == "deferred" else None,
        )
    )
    return command_id
