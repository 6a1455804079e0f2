"""An operator's stop and resume reach the read model through Kafka: the dashboard's contact
signals (sequence_stopped, sequence_resumed) on the real broker, applied by `leadctl sequencer`
and projected to `leads.sequence_stopped`."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from schemas.events import ContactSignal, SignalKind
from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.integration.sequencer.conftest import order_event, produce, wait_until

pytestmark = pytest.mark.integration


def stopped(db_url: str, lead_id: uuid.UUID) -> bool | None:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT sequence_stopped FROM leads WHERE lead_id = %s", (lead_id,)
        ).fetchone()
    return None if row is None else bool(row[0])


def operator_signal(tenant: uuid.UUID, lead: uuid.UUID, kind: SignalKind) -> ContactSignal:
    return ContactSignal(
        signal_id=f"operator:{uuid.uuid4()}",
        tenant_id=tenant,
        lead_id=lead,
        kind=kind,
        occurred_at=datetime.now(UTC),
        source="dashboard",
        detail="ops@example.com: customer called",
    )


async def test_stop_then_resume_is_projected(
    topics: Topics, kafka_bootstrap: str, db_url: str, make_tenant: Any, start_worker: Any
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    event = order_event(tenant.id, f"o-{uuid.uuid4().hex[:8]}")
    lead = event.lead_id
    assert lead is not None
    worker = start_worker("single")
    produce(kafka_bootstrap, topics.order_events, [event])
    await wait_until(lambda: stopped(db_url, lead) is False, 90, "the running lead", worker)
    stop = operator_signal(tenant.id, lead, SignalKind.SEQUENCE_STOPPED)
    produce(kafka_bootstrap, topics.contact_signals, [stop])
    await wait_until(lambda: stopped(db_url, lead) is True, 60, "the stop projected", worker)
    resume = operator_signal(tenant.id, lead, SignalKind.SEQUENCE_RESUMED)
    produce(kafka_bootstrap, topics.contact_signals, [resume])
    await wait_until(lambda: stopped(db_url, lead) is False, 60, "the resume projected", worker)
