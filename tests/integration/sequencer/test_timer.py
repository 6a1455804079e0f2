"""Later steps come from the timer on the real broker, following the tenant's own nurture plan
stored in PostgreSQL: step 0 at once, step 1 when the tick finds it due, each exactly once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from schemas.base import Channel
from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.integration.sequencer.conftest import (
    Collector,
    order_event,
    produce,
    wait_until,
)

pytestmark = pytest.mark.integration

PLAN = {
    "name": "fast",
    "steps": [
        {"after_minutes": 0, "channel": "email", "template": "nurture_email_welcome"},
        {"after_minutes": 1, "channel": "sms", "template": "nurture_sms_followup"},
    ],
    "lost_after_minutes": 60,
    "min_gap_minutes": 0,
}


async def test_timer_emits_the_next_step_of_the_tenants_plan_once(
    topics: Topics,
    kafka_bootstrap: str,
    db_url: str,
    make_tenant: Any,
    start_worker: Any,
    commands_of: Collector,
) -> None:
    tenant = (await make_tenant(timezone=tz_at_local_hour(12)))[0].id
    with psycopg.connect(db_url) as conn:
        conn.execute("UPDATE tenants SET nurture_plan = %s WHERE id = %s", (Jsonb(PLAN), tenant))
    worker = start_worker("timer")
    await wait_until(worker.ready, 90, "the worker", worker)  # reads at once from here on
    created = datetime.now(UTC) - timedelta(seconds=52)  # step 1 is due ~8 s from now
    event = order_event(tenant, f"o-{uuid.uuid4().hex[:8]}", created_at=created)
    produce(kafka_bootstrap, topics.order_events, [event])

    await wait_until(commands_of.at_least(1), 90, "step 0", worker)
    first = commands_of.commands()[0]
    assert (first.step_index, first.channel) == (0, Channel.EMAIL)
    assert datetime.now(UTC) < created + timedelta(minutes=1)  # step 1 not due yet
    await wait_until(commands_of.at_least(2), 60, "step 1 from the timer", worker)
    second = commands_of.commands()[1]
    assert (second.step_index, second.channel) == (1, Channel.SMS)
    assert second.template == "nurture_sms_followup"
    assert second.due_at >= created + timedelta(minutes=1)
    await asyncio.sleep(3)  # more ticks: nothing else
    commands_of.poll(1.0)
    assert len(commands_of.records) == 2
