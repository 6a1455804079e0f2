"""`leadctl status` against real services' health endpoints, Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from click.testing import CliRunner, Result
from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import insert

from leadctl.main import cli
from services.common.db.models import CompanyPollCursor
from services.common.kafka.producer import KafkaProducer
from services.common.observability import add_observability_routes
from services.common.topics import Topics
from tests.conftest import free_port
from tests.support.http_peer import serving
from tests.support.read_model_rows import add_job, add_lead, ago

pytestmark = pytest.mark.integration


@contextlib.asynccontextmanager
async def fake_service(name: str, checks: dict[str, bool]) -> AsyncIterator[int]:
    """A real HTTP peer with the services' own /healthz and /readyz."""

    async def ready() -> dict[str, bool]:
        return checks

    app = web.Application()
    add_observability_routes(app, service=name, ready=ready)
    async with serving(app) as port:
        yield port


def seed_kafka(kafka: str, topics: Topics, tenant: uuid.UUID, group: str) -> int:
    """Five commands of which `group` processed three; two records in the order-events DLQ."""
    producer = KafkaProducer(kafka, client_id="status-test").start()
    delivered = [
        producer.send_sync(topic, key=str(tenant), value=value)
        for topic, value in [(topics.touchpoint_commands, b"{}")] * 5
        + [(topics.order_events + ".dlq", b"bad")] * 2
    ]
    producer.close()
    partition = delivered[0].partition
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topics.touchpoint_commands, partition, 3)], asynchronous=False
        )
    finally:
        consumer.close()
    return partition


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


async def test_status_reports_health_lag_dlq_leads_and_errors(
    service_env, db_engine, make_tenant, topics: Topics, kafka_bootstrap: str, monkeypatch
) -> None:
    tenant, _ = await make_tenant(name="Status Test Location")
    marker = f"shopmonkey 401 {uuid.uuid4().hex[:6]}"
    async with db_engine.begin() as conn:
        lead = await add_lead(conn, tenant.id, "engaged")
        await add_lead(conn, tenant.id, "lost")
        await add_job(conn, tenant.id, lead, "sent", "accepted", decided_minutes_ago=30)
        await add_job(conn, tenant.id, lead, "skipped", "not_whitelisted", step_index=1)
        await add_job(
            conn, tenant.id, lead, "failed", f"twilio_21211: {marker}", step_index=2, channel="sms"
        )
        await add_job(
            conn,
            tenant.id,
            lead,
            "sent",
            "accepted",
            step_index=3,
            provider_message_id="sg-1",
            delivery_status="bounced",
            delivery_error=f"550 5.1.1 {marker}",
        )
        await conn.execute(
            insert(CompanyPollCursor).values(
                company_id=tenant.shopmonkey_company_id,
                kind="poll",
                last_error=marker,
                last_error_at=ago(0),
            )
        )
    group = f"outbound-{uuid.uuid4().hex[:8]}"
    partition = await asyncio.to_thread(seed_kafka, kafka_bootstrap, topics, tenant.id, group)

    async with (
        fake_service("ingest", {"kafka": True, "postgres": True}) as ingest_port,
        fake_service("outbound", {"kafka": True, "postgres": False}) as outbound_port,
    ):
        monkeypatch.setenv("WEBHOOK_PORT", str(ingest_port))
        monkeypatch.setenv("OUTBOUND_PORT", str(outbound_port))
        monkeypatch.setenv("SEQUENCER_PORT", str(free_port()))  # nothing listens
        monkeypatch.setenv("POLLER_PORT", str(free_port()))
        raw = await invoke("status", "--json", "--host", "127.0.0.1", "--group", group)
        text = await invoke("status", "--host", "127.0.0.1", "--group", group)

    assert raw.exit_code == 0, raw.output
    report = json.loads(raw.output)
    services = {s["service"]: s for s in report["services"]}
    assert services["ingest"]["up"] and services["ingest"]["ready"]
    assert services["outbound"]["up"] and services["outbound"]["ready"] is False
    assert services["outbound"]["checks"] == {"kafka": True, "postgres": False}
    assert not services["sequencer"]["up"] and "refused" in services["sequencer"]["error"]
    assert set(services) == {"ingest", "poller", "sequencer", "outbound"}
    assert [(r["group"], r["topic"], r["partition"], r["lag"]) for r in report["lag"]] == [
        (group, topics.touchpoint_commands, partition, 2)
    ]
    assert report["dlq"][topics.order_events + ".dlq"] == 2
    assert report["dlq"][topics.lead_changes + ".dlq"] == 0
    assert report["leads_by_state"]["engaged"] >= 1 and report["leads_by_state"]["lost"] >= 1
    touches = {(t["status"], t["reason"]) for t in report["touchpoints"]}
    assert {
        ("sent", "accepted"),
        ("skipped", "not_whitelisted"),
        ("failed", "twilio_21211"),
    } <= touches
    assert any(
        p["error"] == marker and p["company_id"] == tenant.shopmonkey_company_id
        for p in report["poller_errors"]
    )
    assert any(marker in (f["reason"] or "") for f in report["failed_sends"])
    [bounce] = [d for d in report["delivery_failures"] if marker in (d["error"] or "")]
    assert bounce["delivery_status"] == "bounced" and bounce["lead_id"] == str(lead)

    assert text.exit_code == 0, text.output
    out = text.output
    for heading in (
        "Services",
        "Consumer lag",
        "Dead-letter topics",
        "Leads by state",
        "Touch points",
        "Recent errors",
    ):
        assert heading in out
    assert "NOT READY" in out and "failing: postgres" in out
    sequencer_line = next(line for line in out.splitlines() if line.strip().startswith("sequencer"))
    assert "DOWN" in sequencer_line
    assert f"total: {group} 2" in out
    assert marker in out
    bounce_line = next(line for line in out.splitlines() if f"550 5.1.1 {marker}" in line)
    assert bounce_line.split()[0] == "bounced"


async def test_status_says_which_source_is_unreachable(service_env, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setenv("DATABASE_URL", f"postgresql://nobody:x@127.0.0.1:{free_port()}/none")
    result = await invoke("status", "--json", "--host", "127.0.0.1", "--kafka-timeout", "2")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["lag_error"] and report["dlq_error"] and report["database_error"]
    assert all(not s["up"] for s in report["services"])
