"""`leadctl leads show` on real PostgreSQL and Kafka: the read model, the ledger and the
lead's own records from its tenant's partition, in time order, contacts masked."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner, Result

from leadctl.main import cli
from schemas.base import Channel, LeadState, command_id_for
from schemas.events import (
    ContactSignal,
    Customer,
    LeadChanged,
    LeadSnapshot,
    OrderEvent,
    OrderSnapshot,
    OrderSource,
    Recipient,
    SignalKind,
    TouchPointCommand,
    TouchPointOutcome,
)
from services.common.kafka.partitioning import partition_for
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics
from tests.support.read_model_rows import add_job, add_lead

pytestmark = pytest.mark.integration

EMAIL, PHONE = "jane.doe@gmail.com", "+12025550123"


def events_for(tenant: uuid.UUID, lead: uuid.UUID, t0: datetime) -> list[tuple[str, object]]:
    """One lead's life across the five topics, `kind` first for the assertions."""
    cmd = command_id_for(lead, 0, Channel.EMAIL)
    customer = Customer(first_name="Jane", email=EMAIL, phone=PHONE)
    snap = LeadSnapshot(
        lead_id=lead,
        tenant_id=tenant,
        state=LeadState.CONTACTED,
        source=OrderSource.WEBHOOK,
        version=2,
        customer=customer,
        created_at=t0,
        updated_at=t0 + timedelta(minutes=2),
    )
    return [
        (
            "order",
            OrderEvent(
                event_id=f"order:{lead}:1",
                tenant_id=tenant,
                lead_id=lead,
                source=OrderSource.WEBHOOK,
                entity="order",
                operation="insert",
                occurred_at=t0,
                ingested_at=t0,
                order=OrderSnapshot(order_id="ord_1", number="1001"),
                customer=customer,
            ),
        ),
        (
            "command",
            TouchPointCommand(
                command_id=cmd,
                tenant_id=tenant,
                lead_id=lead,
                step_index=0,
                channel=Channel.EMAIL,
                template="estimate_checkin",
                due_at=t0 + timedelta(minutes=1),
                issued_at=t0 + timedelta(minutes=1),
                recipient=Recipient(email=EMAIL, phone=PHONE),
            ),
        ),
        (
            "outcome",
            TouchPointOutcome(
                command_id=cmd,
                tenant_id=tenant,
                lead_id=lead,
                step_index=0,
                channel=Channel.EMAIL,
                status="skipped",
                reason="not_whitelisted",
                decided_at=t0 + timedelta(minutes=1, seconds=1),
            ),
        ),
        (
            "state",
            LeadChanged(
                tenant_id=tenant,
                lead_id=lead,
                from_state=LeadState.NEW,
                to_state=LeadState.CONTACTED,
                reason="first_touch_sent",
                changed_at=t0 + timedelta(minutes=2),
                lead=snap,
            ),
        ),
        (
            "signal",
            ContactSignal(
                signal_id=f"sig:{lead}",
                tenant_id=tenant,
                lead_id=lead,
                kind=SignalKind.REPLIED,
                channel=Channel.SMS,
                contact=PHONE,
                occurred_at=t0 + timedelta(minutes=3),
                source="twilio",
            ),
        ),
    ]


def produce(
    kafka: str, topics: Topics, tenant: uuid.UUID, records: list[tuple[str, object]]
) -> set[int]:
    topic_of = {
        "order": topics.order_events,
        "command": topics.touchpoint_commands,
        "outcome": topics.touchpoint_outcomes,
        "state": topics.lead_changes,
        "signal": topics.contact_signals,
    }
    producer = KafkaProducer(kafka, client_id="leads-show-test").start()
    try:
        # newest first: the timeline must come out in event-time order regardless
        delivered = [
            producer.send_sync(topic_of[k], key=str(tenant), value=e.to_bytes())  # type: ignore[attr-defined]
            for k, e in reversed(records)
        ]
    finally:
        producer.close()
    return {d.partition for d in delivered}


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def test_leads_show_tells_the_lead_story_in_order(
    service_env, db_engine, make_tenant, topics: Topics, kafka_bootstrap: str, monkeypatch
) -> None:
    monkeypatch.setenv("LEAD_EMAIL_WHITELIST", "demo@example.com")
    tenant, _ = await make_tenant()
    async with db_engine.begin() as conn:
        lead = await add_lead(conn, tenant.id, "contacted", email=EMAIL, phone=PHONE)
        other = await add_lead(conn, tenant.id, "new", first_name="Other")
        await add_job(conn, tenant.id, lead, "skipped", "not_whitelisted", decided_minutes_ago=8)
        await add_job(
            conn,
            tenant.id,
            lead,
            "sent",
            "accepted",
            step_index=1,
            channel="sms",
            recipient=PHONE,
            provider_message_id="SM123",
            delivery_status="delivered",
        )
        await add_job(
            conn,
            tenant.id,
            lead,
            "sent",
            "accepted",
            step_index=2,
            provider_message_id="sg-9",
            delivery_status="bounced",
            delivery_error="550 5.1.1 mailbox unknown",
            decided_minutes_ago=4,
        )
    t0 = datetime.now(UTC) - timedelta(minutes=30)
    mine = events_for(tenant.id, lead, t0)
    noise = events_for(tenant.id, other, t0 - timedelta(minutes=1))
    partitions = await asyncio.to_thread(produce, kafka_bootstrap, topics, tenant.id, mine + noise)
    # the CLI reads exactly the partition the producers chose for this tenant
    assert partitions == {partition_for(tenant.id, 4)}

    text = await invoke("leads", "show", str(lead))
    assert text.exit_code == 0, text.output
    out = text.output
    assert "contacted" in out and "j***@gmail.com" in out and "***23" in out
    assert EMAIL not in out and PHONE not in out
    assert "SM123" in out and "delivered" in out and "not_whitelisted" in out
    assert "bounced (550 5.1.1 mailbox unknown)" in out
    timeline = out[out.index("Timeline from Kafka") :]
    kinds = [line.split()[2] for line in timeline.splitlines()[2:] if line.strip()]
    assert kinds == ["order", "command", "outcome", "state", "signal"], timeline
    assert "new → contacted (first_touch_sent)" in timeline
    assert str(other) not in out

    raw = await invoke("leads", "show", str(lead), "--json", "--limit", "3")
    report = json.loads(raw.output)
    assert report["lead"]["state"] == "contacted" and report["lead"]["email"] == "j***@gmail.com"
    assert [e["kind"] for e in report["timeline"]] == ["outcome", "state", "signal"]
    assert report["kafka"]["omitted"] == 2
    assert [t["status"] for t in report["touchpoints"]] == ["skipped", "sent", "sent"]
    assert report["touchpoints"][2]["delivery_error"] == "550 5.1.1 mailbox unknown"
    assert EMAIL not in raw.output and PHONE not in raw.output


async def test_leads_show_shows_a_whitelisted_lead_in_full_and_refuses_unknown_ids(
    service_env, db_engine, make_tenant, topics: Topics, monkeypatch
) -> None:
    monkeypatch.setenv("LEAD_EMAIL_WHITELIST", "Demo@Example.com")
    tenant, _ = await make_tenant()
    async with db_engine.begin() as conn:
        lead = await add_lead(conn, tenant.id, "new", email="demo@example.com", phone=PHONE)
    shown = await invoke("leads", "show", str(lead), "--since", "1h")
    assert shown.exit_code == 0, shown.output
    assert "demo@example.com" in shown.output and PHONE in shown.output
    assert "no records for this lead" in shown.output

    unknown = await invoke("leads", "show", str(uuid.uuid4()), "--no-kafka")
    assert unknown.exit_code != 0
    assert "neither in the read model nor in the send ledger" in unknown.output
