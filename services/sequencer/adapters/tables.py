"""Faust tables of the sequencer and the write-behind stores the handlers use.

Co-partitioning (reference/streaming.md §1.4): every source topic is keyed by tenant and has
KAFKA_PARTITIONS partitions, and so do the changelogs. Faust writes a table key to the
partition of the event being processed, so a lead (keyed by lead id) always lives on its
tenant's partition, whichever topic the event came from. Reads and writes here always run
with the current event set to a record of the lead's own tenant.

Ordering of effects: within a batch, leads are changed in a write-behind buffer; the outputs
(commands, LeadChanged, dead letters) are flushed to Kafka first, THEN the buffered leads are
written to the table (RocksDB + changelog), flushed again, and only then are the source records
acked. A crash can therefore repeat an output (outbound dedupes by command_id), never lose one.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, Protocol

import faust
from faust.streams import _current_event, current_event
from faust.types import TP, EventT
from rocksdict import WriteBatch

from services.sequencer.adapters.lead_codec import decode_lead, encode_lead
from services.sequencer.domain.lead import Lead


def raw_schema() -> faust.Schema[bytes, bytes]:
    """Keys and values as bytes: the handlers decode with the contracts (and dead-letter)."""
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


NO_DUE = b"000000000000:"
PREFIX = len(NO_DUE)
MAX_LEADS_PER_CUSTOMER = 200


class ChangelogSink(Protocol):
    def changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None: ...


def set_current_event(event: EventT[Any] | None) -> None:
    """Make `event` Faust's current event: table writes go to its partition.

    Faust sets this while iterating a stream one event at a time; a batch from `noack_take`
    is processed after the fact, so each event is made current again before its writes.
    """
    _current_event.set(None if event is None else weakref.ref(event))


class FastTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog records go through the sequencer's librdkafka producer.

    Faust's own path costs ~100 µs per write (an asyncio task and future per record); this one
    a few µs. Everything else (RocksDB store, partition = current event's, recovery and
    standbys from the changelog topic) is Faust's.
    """

    sink: ChangelogSink | None = None

    def on_key_set(self, key: Any, value: Any) -> None:
        self._send(key, value)

    def on_key_del(self, key: Any) -> None:
        self._send(key, None)

    def _send(self, key: bytes, value: bytes | None) -> None:
        partition = self.partition_for_key(key)
        assert partition is not None and self.sink is not None
        self.sink.changelog(self.changelog_topic.get_topic_name(), partition, key, value)

    def _partition_db(self) -> Callable[[int], Any] | None:
        """The RocksDB store's `partition → database` look-up; None for the memory store."""
        return getattr(self.data, "_db_for_partition", None)

    def read(self, key: bytes) -> bytes | None:
        """`key`'s value on the current event's partition.

        On RocksDB one `get` of that partition's database: `table.get` goes through Faust's
        dict layers and asks RocksDB twice (`key in table`, then `table[key]`)."""
        db_for = self._partition_db()
        if db_for is None:  # memory store (tests): Faust's own path
            value = self.get(key)
            return None if value is None else bytes(value)
        event = current_event()
        assert event is not None
        value = db_for(event.message.partition).get(key)
        return None if value is None else bytes(value)

    def write_all(self, items: list[tuple[EventT[Any] | None, bytes, bytes]]) -> None:
        """Set each `key` to `value` on its event's partition, as `table[key] = value` under
        that event would; on RocksDB one write batch per partition (one WAL append, a third
        of the cost of separate puts) and a changelog record per key."""
        db_for = self._partition_db()
        if db_for is None:  # memory store (tests): Faust's own path
            for event, key, value in items:
                set_current_event(event)
                self[key] = value
            return
        assert self.sink is not None
        topic = self.changelog_topic.get_topic_name()
        batches: dict[int, WriteBatch] = {}
        for event, key, value in items:
            assert event is not None
            partition = event.message.partition
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = WriteBatch(raw_mode=True)
            batch.put(key, value)
            self.sink.changelog(topic, partition, key, value)
        for partition, batch in batches.items():
            db_for(partition).write(batch)

    def partition_items(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) this worker holds for `partition` (for index rebuilds)."""
        store: Any = self.data
        db_for = self._partition_db()
        if db_for is not None:  # RocksDB
            yield from store._visible_items(db_for(partition))
        else:  # memory: only keys recovered from the changelog carry their partition
            for key, part in list(store._key_partition.items()):
                if part == partition and key in store.data:
                    yield key, store.data[key]


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


def persist_changelog_offsets(tables: list[FastTable], offsets: dict[tuple[str, int], int]) -> None:
    """Tell each RocksDB partition how far the changelog holds its data (fast restarts)."""
    by_topic = {t.changelog_topic.get_topic_name(): t for t in tables}
    for (topic, partition), offset in offsets.items():
        table = by_topic.get(topic)
        if table is not None:
            table.data.set_persisted_offset(TP(topic, partition), offset)
