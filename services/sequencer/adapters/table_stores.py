"""The write-behind stores the use cases read and write (`LeadStore`, `CustomerIndex`), over the
Faust tables, and the `Tables` port that writes them once a batch.

Ordering of effects: within a batch, leads are changed in a write-behind buffer; the outputs
(commands, LeadChanged, dead letters) are flushed to Kafka first, THEN the buffered leads are
written to the table (RocksDB + changelog), flushed again, and only then are the source records
acked. A crash can therefore repeat an output (outbound dedupes by command_id), never lose one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import faust
from faust.streams import current_event
from faust.types import EventT

from services.sequencer.adapters.lead_codec import decode_lead, encode_lead
from services.sequencer.adapters.tables import (
    ChangelogEnds,
    FastTable,
    new_table,
    persist_changelog_offsets,
    set_current_event,
)
from services.sequencer.domain.due_index import DueIndex
from services.sequencer.domain.lead import Lead
from services.sequencer.ports import ChangelogSink
from services.sequencer.settings import SequencerSettings

#: The Faust tables, in the order `TableStores` takes them (each has its changelog topic).
TABLE_NAMES = ("leads", "customers")
NO_DUE = b"000000000000:"
PREFIX = len(NO_DUE)
MAX_LEADS_PER_CUSTOMER = 200


def split_record(raw: bytes) -> tuple[float | None, bytes]:
    """(due epoch second or None, encoded lead) of a lead table value."""
    due = int(raw[: PREFIX - 1])
    return (float(due) if due else None), raw[PREFIX:]


class LeadTable:
    """`LeadStore` over the `leads` table (key: 16-byte lead id, value: due hint + lead)."""

    def __init__(self, table: FastTable) -> None:
        self.table = table
        self._pending: dict[bytes, tuple[EventT[Any] | None, Lead, datetime | None]] = {}

    def get(self, lead_id: uuid.UUID) -> Lead | None:
        key = lead_id.bytes
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        raw = self.table.read(key)
        return None if raw is None else decode_lead(split_record(raw)[1])

    def put(self, lead: Lead, due: datetime | None) -> None:
        self._pending[lead.lead_id.bytes] = (current_event(), lead, due)

    def apply(self) -> int:
        """Write the buffered leads to the table (each under the event that changed it)."""
        count = len(self._pending)
        self.table.write_all(
            [
                (
                    event,
                    key,
                    (b"%012d:" % int(due.timestamp()) if due is not None else NO_DUE)
                    + encode_lead(lead),
                )
                for key, (event, lead, due) in self._pending.items()
            ]
        )
        self._pending.clear()
        return count

    def discard(self) -> None:
        self._pending.clear()

    def due_entries(self, partition: int) -> Iterator[tuple[bytes, float]]:
        """`DueHints`: (lead id bytes, due) of this worker's leads of `partition` with a due
        hint (for index rebuilds)."""
        for key, raw in self.table.partition_items(partition):
            due, _ = split_record(raw)
            if due is not None:
                yield key, due


class CustomerTable:
    """`CustomerIndex` over the `customers` table: (tenant, customer id) → lead ids."""

    def __init__(self, table: FastTable) -> None:
        self.table = table
        self._pending: dict[bytes, tuple[EventT[Any] | None, bytes]] = {}

    @staticmethod
    def _key(tenant_id: uuid.UUID, customer_id: str) -> bytes:
        return tenant_id.bytes + customer_id.encode()

    def _ids(self, key: bytes) -> bytes:
        pending = self._pending.get(key)
        if pending is not None:
            return pending[1]
        raw = self.table.read(key)
        return b"" if raw is None else raw

    def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]:
        ids = self._ids(self._key(tenant_id, customer_id))
        return [uuid.UUID(bytes=ids[i : i + 16]) for i in range(0, len(ids), 16)]

    def add(self, tenant_id: uuid.UUID, customer_id: str, lead_id: uuid.UUID) -> None:
        key = self._key(tenant_id, customer_id)
        ids = self._ids(key)
        if any(ids[i : i + 16] == lead_id.bytes for i in range(0, len(ids), 16)):
            return
        ids = (ids + lead_id.bytes)[-16 * MAX_LEADS_PER_CUSTOMER :]
        self._pending[key] = (current_event(), ids)

    def apply(self) -> int:
        count = len(self._pending)
        self.table.write_all([(event, key, ids) for key, (event, ids) in self._pending.items()])
        self._pending.clear()
        return count

    def discard(self) -> None:
        self._pending.clear()


class PartitionSchedule:
    """`Schedule` port: the due index entry goes to the current event's partition."""

    def __init__(self, index: DueIndex) -> None:
        self.index = index

    def schedule(self, lead_id: uuid.UUID, at: datetime) -> None:
        event = current_event()
        assert event is not None
        self.index.add(event.message.partition, lead_id.bytes, at.timestamp())


class TableStores:
    """The `Tables` port: the `leads` and `customers` tables and their write-behind stores."""

    #: Writes of the records handled from now on go to this event's partition.
    make_current = staticmethod(set_current_event)

    def __init__(self, leads: FastTable, customers: FastTable) -> None:
        self.leads_table = leads
        self.customers_table = customers
        self.leads = LeadTable(leads)
        self.customers = CustomerTable(customers)

    @classmethod
    def create(
        cls,
        app: faust.App,
        settings: SequencerSettings,
        *,
        sink: ChangelogSink,
        changelog_ends: ChangelogEnds | None = None,
    ) -> TableStores:
        """Both tables registered with `app`, their changelog records sent to `sink`, their
        local state checked against `changelog_ends` on every assignment."""

        def table(name: str) -> FastTable:
            return new_table(
                app,
                name,
                partitions=settings.kafka_partitions,
                min_insync=settings.kafka_min_insync,
                memory_mb=settings.sequencer_rocksdb_memory_mb,
                sink=sink,
                changelog_ends=changelog_ends,
            )

        leads, customers = (table(name) for name in TABLE_NAMES)
        return cls(leads, customers)

    def write(self) -> None:
        self.leads.apply()
        self.customers.apply()

    def persist_offsets(self, changelog_offsets: Mapping[tuple[str, int], int]) -> None:
        persist_changelog_offsets([self.leads_table, self.customers_table], changelog_offsets)

    def discard(self) -> None:
        self.leads.discard()
        self.customers.discard()
