"""Poison lead changes never stop the read model: a change PostgreSQL refuses (a NUL in a
name, a number out of its column's range, a constraint) goes to the DLQ with the reason in its
headers after one try of that record, and the records around it reach `leads` within seconds."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
import psycopg
import pytest

from schemas.events import LeadChanged
from services.common.kafka.producer import KafkaProducer
from services.common.settings import load_settings
from services.common.topics import Topics
from services.sequencer.adapters.projection import project
from services.sequencer.bootstrap import build_projection
from services.sequencer.settings import SequencerSettings
from tests.integration.sequencer.test_projection import change
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.integration


def fresh(tenant: uuid.UUID) -> LeadChanged:
    """The first change of a new lead of `tenant`."""
    return change(tenant, 1, order_id=f"o-{uuid.uuid4().hex}")


def poisoned(tenant: uuid.UUID, **lead: Any) -> tuple[LeadChanged, bytes]:
    """A change that is a valid contract, but with `lead` fields PostgreSQL refuses."""
    good = fresh(tenant)
    doc = orjson.loads(good.to_bytes())
    for name, value in lead.items():
        if name in ("first_name", "last_name"):
            doc["lead"]["customer"][name] = value
        else:
            doc["lead"][name] = value
    raw = orjson.dumps(doc)
    return LeadChanged.from_bytes(raw), raw  # the contract takes it


def leads_present(db_url: str, ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT lead_id FROM leads WHERE lead_id = ANY(%s)", (ids,)).fetchall()
    return {r[0] for r in rows}


async def test_refused_rows_are_left_out_one_savepoint_each(db_url: str, make_tenant: Any) -> None:
    tenant = (await make_tenant())[0].id
    marker = f"poison-{uuid.uuid4().hex[:8]}"
    good_before, good_after = fresh(tenant), fresh(tenant)
    nul, _ = poisoned(tenant, first_name="Sa\x00m")
    huge, _ = poisoned(tenant, touches_sent=2**40)  # leads.touches_sent is an integer
    checked, _ = poisoned(tenant, first_name=marker)
    batch = [  # `huge` first: PostgreSQL refuses it inside the batch's pipeline
        ("huge", huge),
        ("a", good_before),
        ("nul", nul),
        ("check", checked),
        ("b", good_after),
    ]
    with psycopg.connect(db_url, autocommit=True) as conn:
        # a constraint of this test only: the row named `marker` violates it
        name = f"ck_leads_test_{marker.replace('-', '_')}"
        conn.execute(
            f"ALTER TABLE leads ADD CONSTRAINT {name} CHECK (first_name <> '{marker}') NOT VALID"
        )
        try:
            done = project(conn, batch)
        finally:
            conn.execute(f"ALTER TABLE leads DROP CONSTRAINT {name}")
    assert done.written == 2
    reasons = dict(done.refused)
    assert set(reasons) == {"nul", "huge", "check"}
    assert "NUL" in reasons["nul"] and "DataError" in reasons["nul"]
    assert "out of range" in reasons["huge"]
    assert "CheckViolation" in reasons["check"] and name in reasons["check"]
    assert leads_present(db_url, [good_before.lead_id, good_after.lead_id]) == {
        good_before.lead_id,
        good_after.lead_id,
    }
    assert not leads_present(db_url, [nul.lead_id, huge.lead_id, checked.lead_id])


async def test_the_projection_dead_letters_poison_and_keeps_moving(
    service_env: dict[str, str], topics: Topics, db_url: str, make_tenant: Any
) -> None:
    tenant = (await make_tenant())[0].id
    first, last = fresh(tenant), fresh(tenant)
    bad_name, bad_name_raw = poisoned(tenant, first_name="\x00")
    bad_number, bad_number_raw = poisoned(tenant, version=2**63)  # leads.version is a bigint
    settings = load_settings(SequencerSettings)
    producer = KafkaProducer(settings.kafka_bootstrap_servers, client_id="test").start()
    projection = build_projection(settings, producer)
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), daemon=True)
    try:
        key = str(tenant).encode()
        for raw in (first.to_bytes(), bad_name_raw, bad_number_raw, last.to_bytes()):
            producer.send_sync(topics.lead_changes, key=key, value=raw)
        started = time.monotonic()
        runner.start()
        want = {first.lead_id, last.lead_id}
        while leads_present(db_url, list(want)) != want:
            assert time.monotonic() - started < 30, "the projection stopped at a poison record"
            time.sleep(0.2)
        letters = read_topic(settings.kafka_bootstrap_servers, topics.lead_changes + ".dlq", 2, 30)
    finally:
        stop.set()
        runner.join(10)
        projection.close()
        producer.close()
    assert sorted(m.value() for m in letters) == sorted([bad_name_raw, bad_number_raw])
    for msg in letters:
        headers = dict(msg.headers() or [])
        assert headers["dlq.reason"].startswith(b"poison: PostgreSQL refused the row")
        assert headers["dlq.service"] == b"lead-projection"
    assert not leads_present(db_url, [bad_name.lead_id, bad_number.lead_id])


def batches_written(
    monkeypatch: pytest.MonkeyPatch, tenant: uuid.UUID, db_url: str, wait_ms: int
) -> int:
    """Six changes written 60 ms apart to a projection that has caught up: how many
    transactions (batches) it took them in."""
    monkeypatch.setenv("PROJECTION_FETCH_WAIT_MS", str(wait_ms))
    settings = load_settings(SequencerSettings)
    producer = KafkaProducer(settings.kafka_bootstrap_servers, client_id="test").start()
    projection = build_projection(settings, producer)
    stop = threading.Event()
    runner = threading.Thread(target=projection.run, args=(stop,), daemon=True)
    key = str(tenant).encode()

    def written(changes: list[LeadChanged]) -> None:
        want = {c.lead_id for c in changes}
        deadline = time.monotonic() + 30
        while leads_present(db_url, list(want)) != want:
            assert time.monotonic() < deadline, "the projection did not write them"
            time.sleep(0.05)

    try:
        runner.start()
        first = fresh(tenant)
        producer.send_sync(settings.topics.lead_changes, key=key, value=first.to_bytes())
        written([first])  # assigned and caught up
        time.sleep(0.5)
        before = batch_count()
        changes = [fresh(tenant) for _ in range(6)]
        for c in changes:
            producer.send_sync(settings.topics.lead_changes, key=key, value=c.to_bytes())
            time.sleep(0.06)
        written(changes)
        return batch_count() - before
    finally:
        stop.set()
        runner.join(10)
        projection.close()
        producer.close()


def batch_count() -> int:
    from services.sequencer.adapters.metrics import PROJECTION_BATCH_SECONDS

    [metric] = PROJECTION_BATCH_SECONDS.collect()
    return int(next(s.value for s in metric.samples if s.name.endswith("_count")))


async def test_lead_changes_that_come_close_together_share_a_transaction(
    service_env: dict[str, str],
    db_url: str,
    make_tenant: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PROJECTION_FETCH_WAIT_MS lets Kafka hold the projection's fetch to gather changes: six
    changes within 300 ms take at most two transactions; with 0, each goes on its own."""
    tenant = (await make_tenant())[0].id
    assert batches_written(monkeypatch, tenant, db_url, 400) <= 2
    assert batches_written(monkeypatch, tenant, db_url, 0) >= 4
