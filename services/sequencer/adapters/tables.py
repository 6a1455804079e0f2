"""The Faust tables of the sequencer (`leads`, `customers`): RocksDB per partition, their
changelog records produced through the sequencer's own librdkafka outbox.

Co-partitioning (reference/streaming.md §1.4): every source topic is keyed by tenant and has
KAFKA_PARTITIONS partitions, and so do the changelogs. Faust writes a table key to the
partition of the event being processed, so a lead (keyed by lead id) always lives on its
tenant's partition, whichever topic the event came from. Reads and writes here always run
with the current event set to a record of the lead's own tenant.

Local state is a cache of the changelog. A partition's RocksDB that says it holds changelog
records the changelog does not have (Kafka's data was reset, the changelog deleted or
recreated, while SEQUENCER_DATA_DIR stayed) is discarded on assignment and rebuilt from the
changelog, as Kafka Streams does, where Faust would stop the worker with ConsistencyError.
"""

from __future__ import annotations

import logging
import shutil
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any

import faust
from faust.streams import _current_event, current_event
from faust.types import TP, EventT
from rocksdict import WriteBatch

from services.sequencer.ports import ChangelogSink, SourceEvent

log = logging.getLogger(__name__)

#: `await ends(tps)`: each changelog partition's end offset (changelog_ends.py)
ChangelogEnds = Callable[[list[TP]], Awaitable[dict[TP, int]]]


def raw_schema() -> faust.Schema[bytes, bytes]:
    """Keys and values as bytes: the handlers decode with the contracts (and dead-letter)."""
    return faust.Schema(
        key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


def rocksdb_options(memory_mb: int) -> dict[str, int]:
    """Per table partition: half the budget block cache, half two write buffers."""
    budget = memory_mb * 1024 * 1024
    return {
        "block_cache_size": budget // 2,
        "block_cache_compressed_size": 0,
        "write_buffer_size": budget // 4,
        "max_write_buffer_number": 2,
        "max_open_files": 64,
    }


def set_current_event(event: SourceEvent | None) -> None:
    """Make `event` Faust's current event: table writes go to its partition.

    Faust sets this while iterating a stream one event at a time; a batch from `noack_take`
    is processed after the fact, so each event is made current again before its writes.
    """
    _current_event.set(None if event is None else weakref.ref(event))  # type: ignore[arg-type]


class FastTable(faust.Table[bytes, bytes]):
    """A Faust table whose changelog records go through the sequencer's librdkafka producer
    (Faust's own path makes an asyncio task and future per record; bench/sequencer/README.md).
    Everything else (RocksDB store, partition = current event's, recovery and standbys from
    the changelog topic) is Faust's.
    """

    sink: ChangelogSink | None = None
    changelog_ends: ChangelogEnds | None = None

    async def on_rebalance(
        self,
        assigned: set[TP],
        revoked: set[TP],
        newly_assigned: set[TP],
        generation_id: int = 0,
    ) -> None:
        """Faust's rebalance of the store, then the check of every assigned changelog
        partition's local state against the changelog (before recovery reads from it)."""
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        await self.discard_state_ahead_of_changelog(assigned)

    async def discard_state_ahead_of_changelog(self, assigned: Iterable[TP]) -> list[int]:
        """Discard the local state of each assigned partition whose persisted changelog
        offset is not below the changelog's end (it holds records the changelog lost);
        recovery then reads that partition's changelog from its start. Returns them."""
        if self._partition_db() is None or self.changelog_ends is None:
            return []  # memory store: nothing persists across starts
        topic = self.changelog_topic.get_topic_name()
        store: Any = self.data
        persisted = {tp: store.persisted_offset(tp) for tp in assigned if tp.topic == topic}
        held = [tp for tp, offset in persisted.items() if offset is not None]
        if not held:
            return []
        ends = await self.changelog_ends(held)
        discarded = []
        for tp in sorted(held):
            if persisted[tp] >= ends[tp]:
                log.warning(
                    "table %s partition %d: local state holds changelog records up to offset "
                    "%d but %s ends at %d (Kafka's data was reset?): discarding it and "
                    "rebuilding from the changelog",
                    self.name,
                    tp.partition,
                    persisted[tp],
                    topic,
                    ends[tp],
                )
                discard_partition(store, tp.partition)
                discarded.append(tp.partition)
        return discarded

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


def discard_partition(store: Any, partition: int) -> None:
    """Close and delete one partition's RocksDB and forget its keys; Faust's store opens an
    empty one at the next use (`_db_for_partition`)."""
    db = store._dbs.pop(partition, None)
    if db is not None:
        db.close()
    for key in [k for k, p in list(store._key_index.items()) if p == partition]:
        store._key_index.pop(key, None)
    shutil.rmtree(store.partition_path(partition), ignore_errors=True)


def new_table(
    app: faust.App,
    name: str,
    *,
    partitions: int,
    min_insync: int,
    memory_mb: int,
    sink: ChangelogSink,
    changelog_ends: ChangelogEnds | None = None,
) -> FastTable:
    """A `FastTable` of raw bytes registered with `app`, its changelog records sent to `sink`
    (the changelog topic: the app's replication factor and `min_insync`); `changelog_ends`
    lets it check its local state against the changelog."""
    table = FastTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        partitions=partitions,
        extra_topic_configs={"min.insync.replicas": str(min_insync)},
        schema=raw_schema(),
        key_type=bytes,  # the changelog topic is built from these (recovery decodes with
        value_type=bytes,  # them): raw bytes, never JSON/utf-8
        options=rocksdb_options(memory_mb),
    )
    table.sink = sink
    table.changelog_ends = changelog_ends
    app.tables.add(table)
    return table


def persist_changelog_offsets(
    tables: list[FastTable], offsets: Mapping[tuple[str, int], int]
) -> None:
    """Tell each RocksDB partition how far the changelog holds its data (fast restarts)."""
    by_topic = {t.changelog_topic.get_topic_name(): t for t in tables}
    for (topic, partition), offset in offsets.items():
        table = by_topic.get(topic)
        if table is not None:
            table.data.set_persisted_offset(TP(topic, partition), offset)
