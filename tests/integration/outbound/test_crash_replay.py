"""`leadctl outbound` killed with SIGKILL mid-batch and restarted: every command is sent exactly
once. Then the whole topic consumed again from the start by a new group: zero new requests."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from schemas.events import OutcomeStatus, TouchPointOutcome
from services.common.topics import Topics
from tests.conftest import ROOT, tz_at_local_hour
from tests.integration.outbound.conftest import (
    ledger_rows,
    outcome_records,
    produce,
    running_outbound,
    send_requests,
    sends_per_command,
    wait_final,
    whitelisted_batch,
)
from tests.support.consent import grant_sms
from tests.unit.outbound.support import FakeProviders

pytestmark = pytest.mark.integration
N = 60


def start_outbound(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "leadctl.main", "outbound"],
            cwd=ROOT,
            env=dict(os.environ),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """Each partition of `topic`: the offset its next record will get."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ends-{uuid.uuid4().hex}"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
    finally:
        consumer.close()


async def wait_until(predicate: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; log:\n{log.read_text()[-4000:]}")


async def test_sigkill_mid_batch_restart_sends_each_once_and_replay_sends_nothing(
    outbound_env: dict[str, str],
    topics: Topics,
    providers: FakeProviders,
    make_tenant: Any,
    db_url: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    tenants = [(await make_tenant(timezone=tz_at_local_hour(12)))[0].id for _ in range(6)]
    batch = whitelisted_batch(tenants, N)
    await grant_sms(db_url, batch.commands)
    # Every message is created on arrival and answered 0.2 s later: a kill lands between a
    # provider having the message and our ledger knowing it.
    slow = {"storm": {"rate": 1.0, "seed": 1, "faults": [{"status": None, "delay": 0.2}]}}
    providers.sendgrid.configure(slow)
    providers.twilio.configure(slow)
    await produce(kafka_bootstrap, topics, batch.commands)
    log = tmp_path / "outbound.log"

    first = start_outbound(log)
    try:
        await wait_until(
            lambda: len(providers.accepted()) >= 12, 60, "the first process to send", log
        )
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = await ledger_rows(db_url, batch.ids)
    states = collections.Counter(at_kill.values())
    assert states["claimed"] >= 1, f"kill did not land mid-send: {states}"
    assert sum(states.values()) < N or states["claimed"], states
    providers.sendgrid.reset_faults()
    providers.twilio.reset_faults()

    second = start_outbound(log)
    try:
        rows = await wait_final(db_url, batch.ids, timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert set(rows.values()) == {"sent"}, (rows, log.read_text()[-3000:])
    sends = sends_per_command(providers, batch.commands)
    assert sends == {cid: 1 for cid in batch.ids}, log.read_text()[-3000:]

    # Replay: a new consumer group reads the whole topic again from offset 0. The replay's
    # outcomes are those past each partition's end before it (a 3 s read of the earlier ones
    # could miss some on a loaded machine, and then took them for replayed ones).
    ends = end_offsets(kafka_bootstrap, topics.touchpoint_outcomes)
    providers.sendgrid.requests.clear()
    providers.twilio.requests.clear()
    async with running_outbound(outbound_group_id=f"replay-{uuid.uuid4().hex[:8]}"):
        after = await outcome_records(kafka_bootstrap, topics, sum(ends.values()) + N, 60)
    replayed = [
        TouchPointOutcome.from_bytes(m.value())
        for m in after
        if m.offset() >= ends.get(m.partition(), 0)
    ]
    assert len(replayed) == N
    assert all(o.duplicate and o.status is OutcomeStatus.SENT for o in replayed)
    assert send_requests(providers) == []
