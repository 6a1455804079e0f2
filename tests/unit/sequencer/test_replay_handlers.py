"""The handlers' REPLAY mode (agreement with `leadctl replay`): record_only commands, a lead
created at/after `since` reset and re-derived on its first replayed order event (version kept),
an older lead only stamped and re-applied, nothing logical changed → no LeadChanged."""

from __future__ import annotations

import uuid
from datetime import timedelta

from schemas.base import Channel
from schemas.events import OutcomeStatus
from services.common.domain.replay import ReplayRun
from services.sequencer.adapters.tenant_directory import StaticDirectory
from services.sequencer.domain.replay import ReplayContext
from tests.unit.sequencer.support import (
    T0,
    TENANT,
    NoCustomers,
    build_sequencer,
    order,
    outcome,
)

CONFIG = StaticDirectory("America/New_York").get(TENANT)


def test_replayed_order_resets_a_recent_lead_and_reemits_record_only() -> None:
    seq, leads, outbox = build_sequencer()
    event = order()
    assert event.lead_id is not None
    seq.on_order(event, CONFIG, T0)
    seq.on_outcome(outcome(event.lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT), CONFIG, T0)
    live = leads.data[event.lead_id]
    assert live.version == 2 and len(outbox.commands) == 1
    run = uuid.uuid4()
    replay = ReplayContext(run, since=T0 - timedelta(days=1))
    later = T0 + timedelta(hours=1)
    seq.on_order(event, CONFIG, later, replay)  # the same event again: reset, re-derived
    replayed = outbox.commands[-1]
    assert len(outbox.commands) == 2 and replayed.record_only
    assert replayed.command_id == outbox.commands[0].command_id
    lead = leads.data[event.lead_id]
    assert lead.replay_id == run.hex + ":reset" and lead.version >= live.version  # never back
    assert seq.replay_stats.leads_reset == 1 and seq.replay_stats.commands_reemitted == 1
    # the replayed outcome brings the lead back to where it was: contacted again
    replay = ReplayContext(run, since=T0 - timedelta(days=1))
    sent = outcome(event.lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT)
    seq.on_outcome(sent, CONFIG, later, replay)
    assert outbox.changes[-1].lead.state.value == "contacted"
    assert outbox.changes[-1].lead.version > live.version


def test_a_replayed_outcome_read_before_the_order_event_does_not_prevent_the_reset() -> None:
    """Outcomes and orders are different topics, read in no fixed order during a replay: the
    lead is re-derived from its order event either way, and only once."""
    seq, leads, outbox = build_sequencer()
    event = order()
    assert event.lead_id is not None
    seq.on_order(event, CONFIG, T0)
    seq.on_outcome(outcome(event.lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT), CONFIG, T0)
    run = uuid.uuid4()
    replay = ReplayContext(run, since=T0 - timedelta(days=1))
    later = T0 + timedelta(hours=1)
    sent = outcome(event.lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT)
    seq.on_outcome(sent, CONFIG, later, replay)
    seq.on_order(event, CONFIG, later, replay)
    seq.on_order(event, CONFIG, later, replay)  # a second replayed order record: no second reset
    assert seq.replay_stats.leads_reset == 1
    assert outbox.commands[-1].record_only and len(outbox.commands) == 2
    assert leads.data[event.lead_id].replay_id == run.hex + ":reset"


def test_replayed_order_of_an_older_lead_is_only_stamped_and_changes_nothing() -> None:
    seq, leads, outbox = build_sequencer()
    event = order()
    assert event.lead_id is not None
    seq.on_order(event, CONFIG, T0)
    before = (len(outbox.commands), len(outbox.changes), leads.data[event.lead_id].version)
    run = uuid.uuid4()
    replay = ReplayContext(run, since=T0 + timedelta(days=1))  # lead created before since
    seq.on_order(event, CONFIG, T0 + timedelta(minutes=5), replay)
    lead = leads.data[event.lead_id]
    assert lead.replay_id == run.hex
    assert (len(outbox.commands), len(outbox.changes), lead.version) == before
    assert seq.replay_stats.leads_reset == 0 and seq.replay_stats.leads_changed == 0


def test_replay_run_ranges_and_tenants() -> None:
    run = ReplayRun(uuid.uuid4(), T0, {"orders:0": 10, "orders:1": 0}, frozenset({TENANT}))
    assert run.in_range("orders", 0, 9) and not run.in_range("orders", 0, 10)
    assert not run.in_range("orders", 1, 0) and not run.in_range("other", 0, 0)
    assert run.covers(TENANT) and not run.covers(uuid.uuid4()) and not run.covers(None)
    assert ReplayRun(uuid.uuid4(), T0, {}).covers(uuid.uuid4())


def test_a_customer_event_that_changes_nothing_a_lead_shows_leaves_its_updated_at() -> None:
    """So a customer event read before its lead existed (ignored then) and applied in a
    replay (the customer index knows the lead now) changes no lead; a real change still
    moves it."""
    lead_id = order().lead_id
    assert lead_id is not None

    class Known(NoCustomers):
        def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]:
            return [lead_id]

    seq, leads, _ = build_sequencer(Known())
    seq.on_order(order(at=T0), CONFIG, T0)
    created = leads.data[lead_id].updated_at
    later = T0 + timedelta(hours=20)
    same = order(at=later, event_id="customer:c-1:1").model_copy(
        update={"entity": "customer", "lead_id": None, "order": None}
    )
    seq.on_order(same, CONFIG, later)
    assert leads.data[lead_id].updated_at == created
    moved = order(at=later, email="sam.new@example.com", event_id="customer:c-1:2")
    seq.on_order(
        moved.model_copy(update={"entity": "customer", "lead_id": None, "order": None}),
        CONFIG,
        later,
    )
    assert leads.data[lead_id].updated_at == later
    assert leads.data[lead_id].customer.email == "sam.new@example.com"
