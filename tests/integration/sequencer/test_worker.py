"""`leadctl sequencer` on the real broker and PostgreSQL: an order event in → the first
touch-point command out and the `leads` row projected."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest

from schemas.base import Channel, command_id_for
from services.common.domain import hops
from services.common.domain.dead_letter import Headers
from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.integration.sequencer.conftest import (
    Collector,
    order_event,
    produce,
    wait_until,
)

pytestmark = pytest.mark.integration


def lead_row(db_url: str, lead_id: uuid.UUID) -> tuple[Any, ...] | None:
    with psycopg.connect(db_url) as conn:
        return conn.execute(
            "SELECT state, version, email, updated_at, projected_at FROM leads WHERE lead_id = %s",
            (lead_id,),
        ).fetchone()


async def test_order_event_in_first_command_out_and_leads_row(
    topics: Topics,
    kafka_bootstrap: str,
    db_url: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
) -> None:
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    event = order_event(tenant.id, f"o-{uuid.uuid4().hex[:8]}")
    assert event.lead_id is not None
    worker = start_worker("single")
    produce(kafka_bootstrap, topics.order_events, [event])
    await wait_until(commands_of.at_least(1), 90, "the first command", worker)
    (command,) = commands_of.commands()
    assert command.command_id == command_id_for(event.lead_id, 0, Channel.EMAIL)
    assert command.lead_id == event.lead_id and command.tenant_id == tenant.id
    assert command.step_index == 0 and command.channel is Channel.EMAIL
    assert command.recipient.email == "sam@example.com"
    assert command.record_only is False

    await wait_until(lambda: lead_row(db_url, event.lead_id) is not None, 30, "leads row", worker)
    row = lead_row(db_url, event.lead_id)
    assert row is not None and row[0] == "new" and row[1] >= 1 and row[2] == "sam@example.com"
    assert worker.ready()
    assert "sequencer_records_total" in worker.metrics()


async def test_a_traced_order_gives_its_command_every_hop_so_far_and_nothing_forged(
    topics: Topics,
    kafka_bootstrap: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
) -> None:
    """The order's `hop.webhook_received` goes on with its command, with when the order was
    in Kafka and when the sequencer decided; headers that are no known hop (or not a bounded
    number) stay behind. The worker's metrics show its event-loop lag."""
    tenant, _ = await make_tenant(timezone=tz_at_local_hour(12))
    event = order_event(tenant.id, f"o-{uuid.uuid4().hex[:8]}")
    received = hops.now_us()
    forged: Headers = [
        ("hop.webhook_received", str(received).encode()),
        ("hop.made_up", b"1"),
        ("hop.outbound_claimed", b"9" * 4000),
        ("x-other", b"kept out"),
    ]
    worker = start_worker("traced")
    produce(kafka_bootstrap, topics.order_events, [event], headers=forged)
    await wait_until(commands_of.at_least(1), 90, "the first command", worker)
    trace = hops.Trace.of(commands_of.headers[0])
    assert [name for name, _ in commands_of.headers[0]] == [
        "hop.webhook_received",
        "hop.order_in_kafka",
        "hop.sequencer_decided",
    ]
    at = trace.hops
    assert at["webhook_received"] == received
    # Kafka's timestamps are milliseconds: the order was in Kafka within 1 ms of its produce
    assert received - 1000 <= at["order_in_kafka"] <= at["sequencer_decided"] <= hops.now_us()
    assert "sequencer_event_loop_lag_seconds_count" in worker.metrics()
