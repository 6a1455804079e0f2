"""Hand-written fakes and builders for the sequencer's unit tests."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import faust

from schemas.base import Channel, command_id_for, lead_id_for_order
from schemas.events import (
    ContactSignal,
    Customer,
    LeadChanged,
    Operation,
    OrderEvent,
    OrderSnapshot,
    OrderSource,
    OutcomeStatus,
    SignalKind,
    TouchPointCommand,
    TouchPointOutcome,
)
from services.common.kafka.dlq import DeadLetter
from services.sequencer.domain.lead import Lead
from services.sequencer.entrypoints.faust_app import faust_app
from services.sequencer.ports import CustomerIndex
from services.sequencer.service_layer.sequencer import Sequencer
from services.sequencer.settings import SequencerSettings
from tests.support.deployment_secrets import LEAD_IDS

T0 = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York
TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")


def unit_faust_app(tmp_path: Path, prefix: str) -> faust.App:
    """The sequencer's Faust app as the worker builds it (its transport, its flow control),
    in memory, never started."""
    return faust_app(
        SequencerSettings(
            kafka_topic_prefix=prefix,
            kafka_partitions=4,
            sequencer_store="memory://",
            sequencer_data_dir=tmp_path,
        )
    )


@dataclass
class FakeOutbox:
    """Records what the sequencer would publish (the `Outputs` port)."""

    commands: list[TouchPointCommand] = field(default_factory=list)
    changes: list[LeadChanged] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    changelog_records: list[tuple[str, int, bytes, bytes | None]] = field(default_factory=list)
    ticks: list[tuple[str, int, bytes]] = field(default_factory=list)
    flushes: int = 0
    discards: int = 0

    def command(self, command: TouchPointCommand) -> None:
        self.commands.append(command)

    def lead_changed(self, change: LeadChanged) -> None:
        self.changes.append(change)

    def dead_letter(self, letter: DeadLetter) -> None:
        self.dead.append(letter)

    def changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        self.changelog_records.append((topic, partition, key, value))

    def tick(self, topic: str, partition: int, value: bytes) -> None:
        self.ticks.append((topic, partition, value))

    async def flush(self) -> None:
        self.flushes += 1

    def discard(self) -> None:
        self.discards += 1

    def take_changelog_offsets(self) -> Mapping[tuple[str, int], int]:
        return {}


def order(
    order_id: str = "o-1",
    *,
    tenant: uuid.UUID = TENANT,
    version: int = 1,
    at: datetime = T0,
    status: str = "Estimate",
    email: str | None = "sam@example.com",
    phone: str | None = "+13125550150",
    event_id: str | None = None,
    **flags: object,
) -> OrderEvent:
    return OrderEvent(
        event_id=event_id or f"order:{order_id}:{version}",
        tenant_id=tenant,
        lead_id=lead_id_for_order(LEAD_IDS, tenant, order_id),
        source=OrderSource.WEBHOOK,
        entity="order",
        operation=Operation.INSERT if version == 1 else Operation.UPDATE,
        occurred_at=at,
        ingested_at=at,
        order=OrderSnapshot(order_id=order_id, number="1001", status=status, version=version,
                            created_at=T0, **flags),  # type: ignore[arg-type]
        customer=Customer(customer_id="c-1", first_name="Sam", email=email, phone=phone),
    )  # fmt: skip


def outcome(
    lead_id: uuid.UUID,
    step: int,
    channel: Channel,
    status: OutcomeStatus,
    *,
    reason: str = "",
    at: datetime = T0,
    until: datetime | None = None,
    tenant: uuid.UUID = TENANT,
) -> TouchPointOutcome:
    return TouchPointOutcome(
        command_id=command_id_for(lead_id, step, channel),
        tenant_id=tenant,
        lead_id=lead_id,
        step_index=step,
        channel=channel,
        status=status,
        reason=reason or status.value,
        decided_at=at,
        deferred_until=until,
    )


def signal(
    lead_id: uuid.UUID,
    kind: SignalKind,
    *,
    channel: Channel | None = None,
    at: datetime = T0 + timedelta(hours=1),
    sid: str | None = None,
    tenant: uuid.UUID = TENANT,
) -> ContactSignal:
    return ContactSignal(
        signal_id=sid or f"{kind.value}:{channel}:{lead_id}:{at.isoformat()}",
        tenant_id=tenant,
        lead_id=lead_id,
        kind=kind,
        channel=channel,
        occurred_at=at,
        source="test",
    )


class MemoryLeads:
    """The lead table (`LeadStore`) in a dict."""

    def __init__(self) -> None:
        self.data: dict[uuid.UUID, Lead] = {}

    def get(self, lead_id: uuid.UUID) -> Lead | None:
        return self.data.get(lead_id)

    def put(self, lead: Lead, due: datetime | None) -> None:
        self.data[lead.lead_id] = lead


class NoCustomers:
    """A customer index that knows no customer."""

    def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]:
        return []

    def add(self, tenant_id: uuid.UUID, customer_id: str, lead_id: uuid.UUID) -> None:
        return None


class MemoryCustomers:
    """The customer index (`CustomerIndex`) in a dict."""

    def __init__(self) -> None:
        self.index: dict[tuple[uuid.UUID, str], list[uuid.UUID]] = {}

    def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]:
        return list(self.index.get((tenant_id, customer_id), []))

    def add(self, tenant_id: uuid.UUID, customer_id: str, lead_id: uuid.UUID) -> None:
        self.index.setdefault((tenant_id, customer_id), []).append(lead_id)


class NoSchedule:
    def schedule(self, lead_id: uuid.UUID, at: datetime) -> None:
        return None


def build_sequencer(
    customers: CustomerIndex | None = None,
) -> tuple[Sequencer, MemoryLeads, FakeOutbox]:
    """A `Sequencer` over memory fakes (no customer known unless `customers` says)."""
    leads, outbox = MemoryLeads(), FakeOutbox()
    seq = Sequencer(
        leads=leads, customers=customers or NoCustomers(), outbox=outbox, schedule=NoSchedule()
    )
    return seq, leads, outbox
