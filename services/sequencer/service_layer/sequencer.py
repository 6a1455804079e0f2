"""The sequencer's use cases: read the lead, apply the signal, plan, write, publish.

One `Sequencer` for every agent, over small ports (the lead table, the customer index, the
outbox, the due index) so the same code runs in Faust, in unit tests with fakes and in
benchmarks. Every method is synchronous: a lead is read, changed and written back without an
`await` in between, so agents sharing the table on one event loop never lose an update. A
replayed record comes with its `ReplayContext` (None: a live record).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from schemas.base import Channel
from schemas.events import ContactSignal, OrderEvent
from schemas.events import TouchPointOutcome as Outcome
from services.sequencer.domain.effects import lead_changed, touchpoint_command, visible
from services.sequencer.domain.lead import Lead, derive_state
from services.sequencer.domain.lifecycle import (
    apply_appointment,
    apply_contact,
    apply_order,
    apply_outcome,
    customer_returned,
    is_duplicate,
)
from services.sequencer.domain.plan import TenantConfig
from services.sequencer.domain.planner import evaluate, next_due
from services.sequencer.domain.replay import ReplayContext, ReplayStats
from services.sequencer.errors import BadRecord
from services.sequencer.ports import CustomerIndex, LeadStore, Outbox, Schedule

#: Suffix of `Lead.replay_id` once a replay re-derived the lead from its order events.
RESET_MARK = ":reset"


@dataclass(slots=True)
class Result:
    """What one record did (for metrics and tests)."""

    leads_changed: int = 0
    commands: int = 0
    duplicate: bool = False
    ignored: str | None = None  # why nothing happened (unknown lead, no lead id, …)
    unchanged: bool = False  # the lead was evaluated and nothing changed


def _revives(event: OrderEvent) -> set[str]:
    """The services of earlier orders this order revives."""
    if event.order is None:
        return set()
    return {line.revived_from for line in event.order.service_lines if line.revived_from}


def _came_back_at(event: OrderEvent) -> datetime | None:
    """When the customer came back, for a customer event carrying their order at another
    location of the company (ingest's `told_elsewhere`); None for a plain customer change."""
    if event.order is None:
        return None
    return event.order.created_at  # without it, nothing tells which leads came before


class Sequencer:
    def __init__(
        self, *, leads: LeadStore, customers: CustomerIndex, outbox: Outbox, schedule: Schedule
    ) -> None:
        self.leads = leads
        self.customers = customers
        self.outbox = outbox
        self.schedule = schedule
        self.replay_stats = ReplayStats()
        #: Commands emitted since the last `take_emitted`, by channel (counted once a batch).
        self.emitted: dict[Channel, int] = {}

    # use cases ----------------------------------------------------------------------------
    def on_order(
        self,
        event: OrderEvent,
        config: TenantConfig,
        now: datetime,
        replay: ReplayContext | None = None,
    ) -> Result:
        if event.entity == "customer":
            return self._on_customer(event, config, now, replay)
        if event.lead_id is None:
            raise BadRecord(f"{event.entity} event {event.event_id} has no lead_id")
        if event.entity == "appointment":
            return self._on_appointment(event, config, now, replay)
        prior = self._get(event.lead_id, event.tenant_id)
        before = self._replay_touch(prior, replay, reset=True)
        if is_duplicate(before, event.event_id):
            if before is not prior and before is not None:  # stamped only
                return self._commit(prior, before, "replay", config, now, replay)
            return Result(duplicate=True)
        after = apply_order(before, event)
        if replay is not None:
            # re-derived from its first order event in this replay: never reset again
            after.replay_id = replay.stamp + RESET_MARK
            if prior is not None and before is None:  # reset: keep the version counter
                after.version = prior.version
        cid = after.customer.customer_id
        if cid and (before is None or before.customer.customer_id != cid):
            self.customers.add(event.tenant_id, cid, after.lead_id)
        reason = "website_form" if event.entity == "website_form" else f"order_{event.operation}"
        result = self._commit(prior, after, reason, config, now, replay)
        if cid and (before is None or _revives(event)):  # a new order, or one reviving work
            self._tell_other_orders(event, after, cid, config, now, replay, result)
        return result

    def _tell_other_orders(
        self,
        event: OrderEvent,
        lead: Lead,
        customer_id: str,
        config: TenantConfig,
        now: datetime,
        replay: ReplayContext | None,
        total: Result,
    ) -> None:
        """The customer's other orders at this location learn of this one: it was created at
        `lead.created_at` and revives these services (declined work stops, `campaigns`)."""
        revived = _revives(event)
        for other_id in self.customers.leads_of(event.tenant_id, customer_id):
            if other_id == lead.lead_id:
                continue
            other = self.leads.get(other_id)
            if other is None:
                continue
            after = customer_returned(other, lead.created_at, revived)
            if after is not other:
                done = self._commit(other, after, "customer_returned", config, now, replay)
                total.leads_changed += done.leads_changed
                total.commands += done.commands

    def _on_appointment(
        self, event: OrderEvent, config: TenantConfig, now: datetime, replay: ReplayContext | None
    ) -> Result:
        assert event.lead_id is not None
        prior = self._get(event.lead_id, event.tenant_id)
        before = self._replay_touch(prior, replay)
        if prior is None or before is None:
            return Result(ignored="unknown_lead")  # an appointment of an order not seen yet
        if is_duplicate(before, event.event_id):
            if before is not prior:  # stamped only
                return self._commit(prior, before, "replay", config, now, replay)
            return Result(duplicate=True)
        after = apply_appointment(before, event)
        return self._commit(prior, after, f"appointment_{event.operation}", config, now, replay)

    def _replay_touch(
        self, lead: Lead | None, replay: ReplayContext | None, *, reset: bool = False
    ) -> Lead | None:
        """In a replay, a record touching `lead`: the first replayed ORDER event resets it
        (None) when it was created at or after `since`, whether or not a replayed outcome or
        signal (read from another topic, in no fixed order) touched it first; any other
        record stamps it. The outcomes and signals it loses come back: its re-emitted
        record-only commands are answered from the outbound ledger."""
        if replay is None or lead is None or lead.replay_id == replay.stamp + RESET_MARK:
            return lead
        if reset and replay.since <= lead.created_at:
            self.replay_stats.leads_reset += 1
            return None
        if lead.replay_id == replay.stamp:
            return lead
        return lead.copy(replay_id=replay.stamp)

    def _on_customer(
        self, event: OrderEvent, config: TenantConfig, now: datetime, replay: ReplayContext | None
    ) -> Result:
        if event.lead_id is not None:
            targets = [event.lead_id]
        elif event.customer.customer_id:
            targets = self.customers.leads_of(event.tenant_id, event.customer.customer_id)
        else:
            raise BadRecord(f"customer event {event.event_id} has neither lead_id nor customer_id")
        total = Result(ignored=None if targets else "no_leads_for_customer")
        came_back = _came_back_at(event)
        for lead_id in targets:
            before = self._get(lead_id, event.tenant_id)
            if before is None or is_duplicate(before, event.event_id):
                continue
            after = apply_order(before, event)
            if came_back is not None:
                after = customer_returned(after, came_back, _revives(event))
            done = self._commit(before, after, "customer_updated", config, now, replay)
            total.leads_changed += done.leads_changed
            total.commands += done.commands
        return total

    def on_outcome(
        self,
        outcome: Outcome,
        config: TenantConfig,
        now: datetime,
        replay: ReplayContext | None = None,
    ) -> Result:
        prior = self._get(outcome.lead_id, outcome.tenant_id)
        before = self._replay_touch(prior, replay)
        if prior is None or before is None:
            return Result(ignored="unknown_lead")
        after = apply_outcome(before, outcome)
        return self._commit(prior, after, f"outcome_{outcome.status.value}", config, now, replay)

    def on_signal(
        self,
        signal: ContactSignal,
        config: TenantConfig,
        now: datetime,
        replay: ReplayContext | None = None,
    ) -> Result:
        if signal.lead_id is None:
            return Result(ignored="no_lead_id")
        prior = self._get(signal.lead_id, signal.tenant_id)
        before = self._replay_touch(prior, replay)
        if prior is None or before is None:
            return Result(ignored="unknown_lead")
        if is_duplicate(before, signal.signal_id):
            if before is not prior:  # stamped only
                return self._commit(prior, before, "replay", config, now, replay)
            return Result(duplicate=True)
        after = apply_contact(before, signal)
        return self._commit(prior, after, f"signal_{signal.kind.value}", config, now, replay)

    def on_due(
        self, lead_id: uuid.UUID, configs: Callable[[uuid.UUID], TenantConfig], now: datetime
    ) -> Result:
        """A timer tick found this lead in the due index: emit what is due by now."""
        before = self.leads.get(lead_id)
        if before is None:
            return Result(ignored="unknown_lead")
        config = configs(before.tenant_id)
        result = self._commit(before, before, "schedule", config, now, None)
        if result.unchanged:
            # the index is coarse (10 s buckets): not due yet, so put the hint back
            at = next_due(
                before,
                config.plan_at(before.created_at),
                config.policy,
                campaigns=config.campaigns,
                campaign_at=config.campaign_history,
            )
            if at is not None:
                self.schedule.schedule(lead_id, at)
        return result

    # the one write path ---------------------------------------------------------------------
    def _get(self, lead_id: uuid.UUID, tenant_id: uuid.UUID) -> Lead | None:
        lead = self.leads.get(lead_id)
        if lead is not None and lead.tenant_id != tenant_id:
            raise BadRecord(f"lead {lead_id} belongs to another tenant, not {tenant_id}")
        return lead

    def _commit(
        self,
        before: Lead | None,
        after: Lead,
        reason: str,
        config: TenantConfig,
        now: datetime,
        replay: ReplayContext | None,
    ) -> Result:
        """Store `after` (evaluated: its commands emitted, its next due time scheduled) and
        publish it when what it shows changed, `updated_at` included.

        `updated_at` is the latest time of the lead's own order events and signals (`lifecycle`:
        appointments, customer changes and outcomes never move it). A maximum over the same
        events does not depend on the order they arrive in, which a replay changes across
        topics; and a move is published even when nothing else shows, or the read model would
        keep the older time until some later change."""
        # the versions in force at event time: the lead's creation, each campaign run's anchor
        plan = config.plan_at(after.created_at)
        history = config.campaign_history
        ev = evaluate(after, plan, config.policy, now, config.campaigns, history)
        lead = ev.lead
        if before is not None and lead == before:
            return Result(unchanged=True)
        result = Result(commands=len(ev.commands))
        if (
            before is None
            or lead.updated_at != before.updated_at
            or visible(lead) != visible(before)
        ):
            lead = lead.copy(version=(before.version if before else 0) + 1)
            from_state = derive_state(before)[0] if before is not None else None
            why = "no_engagement" if ev.exhausted else reason
            self.outbox.lead_changed(lead_changed(lead, from_state=from_state, reason=why, now=now))
            result.leads_changed = 1
        at = next_due(lead, plan, config.policy, ev.upcoming, config.campaigns, history)
        self.leads.put(lead, at)
        record_only = replay is not None
        for due in ev.commands:
            self.outbox.command(touchpoint_command(lead, due, now=now, record_only=record_only))
            self.emitted[due.channel] = self.emitted.get(due.channel, 0) + 1
        if at is not None:
            self.schedule.schedule(lead.lead_id, at)
        if record_only:
            self.replay_stats.leads_changed += result.leads_changed
            self.replay_stats.commands_reemitted += result.commands
        return result

    def take_emitted(self) -> dict[Channel, int]:
        """Commands emitted since the last call, by channel."""
        emitted, self.emitted = self.emitted, {}
        return emitted
