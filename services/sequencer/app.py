"""The Faust application `lead-sequencer`: tables, agents, the timer (DESIGN §2–5).

Agents (one per source topic, all keyed by tenant, all with KAFKA_PARTITIONS partitions):
- `orders`   leads.order-events.v1: create/update leads, plan and emit the first step;
- `outcomes` leads.touchpoint-outcomes.v1: sent → contacted, skipped/failed per reason,
             deferred → the same command again at deferred_until;
- `signals`  leads.contact-signals.v1: engagement, opt-outs, bounces, business progress;
- `ticks`    an internal topic: the timer publishes one tick per partition this worker
             actively owns that has something due (never for standbys), and the tick is
             processed on that partition like any other event, so table writes stay
             co-partitioned and serialised with the other agents.

Each agent takes records in batches (`noack_take`), processes them synchronously under one
lock shared by all agents (so two agents never interleave on the same lead), flushes the
outputs, writes the leads, flushes the changelog, and only then acks the batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import faust
from faust.types import EventT

from schemas.base import Event, utcnow
from schemas.events import ContactSignal, OrderEvent, TouchPointOutcome
from services.common.errors import ContractError
from services.common.kafka.codec import decode
from services.common.kafka.dlq import DeadLetter
from services.sequencer.adapters import metrics
from services.sequencer.adapters.due_index import DueIndex
from services.sequencer.adapters.faust_transport import Transport
from services.sequencer.adapters.replay_pg import ReplayRuns
from services.sequencer.adapters.tables import (
    CustomerTable,
    FastTable,
    LeadTable,
    persist_changelog_offsets,
    raw_schema,
    set_current_event,
    split_record,
)
from services.sequencer.domain.replay import ReplayContext, ReplayRun
from services.sequencer.errors import BadRecord
from services.sequencer.handlers import Result, Sequencer, TenantConfig
from services.sequencer.settings import SequencerSettings

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Event)

REBUILD_CHUNK = 2_000
TICK_LIMIT = 5_000  # leads evaluated per tick record; more → another tick at once
TICK_RETRY_SECONDS = 60.0
REPLAY_PROGRESS_LOG_SECONDS = 15.0  # a run not yet done logs what is left this often


class Outputs(Protocol):
    def command(self, command: Any) -> None: ...
    def lead_changed(self, change: Any) -> None: ...
    def dead_letter(self, letter: DeadLetter) -> None: ...
    def changelog(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None: ...
    def tick(self, topic: str, partition: int, value: bytes) -> None: ...
    async def flush(self) -> None: ...
    def discard(self) -> None: ...
    def take_changelog_offsets(self) -> Mapping[tuple[str, int], int]: ...


class Directory(Protocol):
    def get(self, tenant_id: uuid.UUID) -> TenantConfig: ...
    async def ensure(self, tenant_ids: Iterable[uuid.UUID]) -> None: ...
    async def refresh(self) -> None: ...


class PartitionSchedule:
    """`Schedule` port: the due index entry goes to the current event's partition."""

    def __init__(self, index: DueIndex) -> None:
        self.index = index

    def schedule(self, lead_id: uuid.UUID, at: datetime) -> None:
        event = faust.current_event()
        assert event is not None
        self.index.add(event.message.partition, lead_id.bytes, at.timestamp())


def _judged_at(event: EventT[Any], now: datetime) -> datetime:
    """The instant a replayed record is judged at: when it was first written (its record
    timestamp), never later than now. A record then gets the decision its first reading got:
    a step 23 h 59 min late then is not 'too late' because the replay runs a minute later.
    (Steps a timer emitted are judged by the replay's own timer, at the wall clock.)"""
    stamp = event.message.timestamp
    if not stamp or stamp <= 0:  # no timestamp (an old message format): the wall clock
        return now
    return min(now, datetime.fromtimestamp(stamp, UTC))


def _tenant_of(key: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(bytes(key or b"").decode())
    except (ValueError, UnicodeDecodeError, TypeError):
        return None


def brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def app_id(settings: SequencerSettings) -> str:
    """`lead-sequencer`, behind the topic prefix so isolated environments share nothing."""
    return settings.app_id


def rocksdb_options(settings: SequencerSettings) -> dict[str, int]:
    """Per table partition: half the budget block cache, half two write buffers."""
    budget = settings.sequencer_rocksdb_memory_mb * 1024 * 1024
    return {
        "block_cache_size": budget // 2,
        "block_cache_compressed_size": 0,
        "write_buffer_size": budget // 4,
        "max_write_buffer_number": 2,
        "max_open_files": 64,
    }


def _label(result: Result) -> str:
    if result.duplicate:
        return "duplicate"
    if result.ignored:
        return "ignored"
    return "applied"


class SequencerApp:
    """The Faust app and everything wired into it; `bootstrap.build` makes the real one."""

    def __init__(
        self,
        settings: SequencerSettings,
        *,
        outbox: Outputs,
        directory: Directory,
        replays: ReplayRuns | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.directory = directory
        self.replays = replays
        self.replay_run: ReplayRun | None = None
        self._replay_loaded = replays is None
        self._replay_logged_at = -math.inf
        self.clock = clock
        self.batch_size = settings.sequencer_batch_size
        self.batch_seconds = settings.sequencer_batch_ms / 1000
        self.due = DueIndex()
        self._indexed: set[int] = set()
        self._tick_sent: dict[int, float] = {}
        self._counters: dict[tuple[str, str], Any] = {}
        self._lock: asyncio.Lock | None = None
        partitions = settings.kafka_partitions
        topics = settings.topics
        self.app = faust.App(
            app_id(settings),
            broker=brokers(settings.kafka_bootstrap_servers),
            store=settings.sequencer_store,
            # one state directory per app id (topic prefix): the RocksDB of another deployment
            # on this disk never meets this one's changelogs
            datadir=str(settings.sequencer_data_dir / "{conf.name}"),
            topic_partitions=partitions,
            topic_replication_factor=1,
            topic_disable_leader=True,
            table_standby_replicas=1,
            web_enabled=False,
            broker_commit_interval=1.0,
            broker_session_timeout=settings.sequencer_session_timeout_seconds,
            broker_heartbeat_interval=min(3.0, settings.sequencer_session_timeout_seconds / 3),
            consumer_auto_offset_reset="earliest",
            stream_buffer_maxsize=max(4096, 4 * self.batch_size),
            processing_guarantee="at_least_once",
        )
        app = self.app
        # kafka:// whose seek back to committed offsets also seeks to 0 (faust_transport.py)
        app.transport = Transport(app.conf.broker_consumer, app)
        self.order_topic = app.topic(topics.order_events, schema=raw_schema())
        self.outcome_topic = app.topic(topics.touchpoint_outcomes, schema=raw_schema())
        self.signal_topic = app.topic(topics.contact_signals, schema=raw_schema())
        self.tick_topic = app.topic(
            f"{app.conf.id}-ticks",
            internal=True,
            partitions=partitions,
            retention=timedelta(hours=1),
            schema=raw_schema(),
        )
        self.leads_table = self._table("leads")
        self.customers_table = self._table("customers")
        self.leads = LeadTable(self.leads_table)
        self.customers = CustomerTable(self.customers_table)
        self.sequencer = Sequencer(
            leads=self.leads,
            customers=self.customers,
            outbox=outbox,
            schedule=PartitionSchedule(self.due),
        )
        self.order_agent = self._agent("orders", self.order_topic, self._on_order)
        self.outcome_agent = self._agent("outcomes", self.outcome_topic, self._on_outcome)
        self.signal_agent = self._agent("signals", self.signal_topic, self._on_signal)
        self.tick_agent = self._agent("ticks", self.tick_topic, self._on_tick)
        app.timer(settings.touchpoint_tick_seconds, name="publish_ticks")(self.publish_ticks)
        app.timer(60.0, name="refresh_tenants")(self._refresh_tenants)
        if replays is not None:
            app.timer(settings.replay_poll_seconds, name="replay_poll")(self.poll_replay)
        self.leads_table.on_recover(self.rebuild_due_index)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    def _table(self, name: str) -> FastTable:
        table = FastTable(
            self.app,
            name=name,
            beacon=self.app.tables.beacon,
            partitions=self.settings.kafka_partitions,
            schema=raw_schema(),
            key_type=bytes,  # the changelog topic is built from these (recovery decodes with
            value_type=bytes,  # them): raw bytes, never JSON/utf-8
            options=rocksdb_options(self.settings),
        )
        table.sink = self.outbox
        self.app.tables.add(table)
        return table

    # the batch loop ------------------------------------------------------------------------------
    def _agent(
        self, name: str, channel: Any, handle: Callable[[EventT[Any], datetime], str]
    ) -> Any:
        async def run(stream: Any) -> None:
            async for events in stream.noack_take(self.batch_size, self.batch_seconds):
                await self.process(name, events, handle)
                for event in events:
                    await stream.ack(event)

        return self.app.agent(channel, name=name)(run)

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def process(
        self, name: str, events: list[EventT[Any]], handle: Callable[[EventT[Any], datetime], str]
    ) -> None:
        """One batch: handle each record, flush outputs, write tables, flush changelogs."""
        started = time.perf_counter()
        async with self.lock:
            try:
                if not self._replay_loaded:  # which replay applies, before the first record
                    await self._poll_replay(check_done=False)
                await self._ensure_tenants(events)
                now = self.clock()
                for event in events:
                    set_current_event(event)
                    replay = self._replay_context(name, event)
                    if replay is False:
                        self._count_record(name, "replay_skipped")
                        continue
                    if isinstance(replay, ReplayContext):
                        self.sequencer.replay = replay
                        at = _judged_at(event, now)
                    else:
                        at = now
                    try:
                        result = handle(event, at)
                    except ContractError as exc:
                        result = "dead_lettered"
                        self._dead_letter(event, str(exc))
                    except Exception as exc:
                        log.exception("%s: unexpected error on a record", name)
                        result = "dead_lettered"
                        self._dead_letter(event, f"unexpected {type(exc).__name__}: {exc}")
                    finally:
                        self.sequencer.replay = None
                    self._count_record(name, result)
                handled = time.perf_counter()
                await self.outbox.flush()
                outputs_acked = time.perf_counter()
                self.leads.apply()
                self.customers.apply()
                written = time.perf_counter()
                await self.outbox.flush()
                persist_changelog_offsets(
                    [self.leads_table, self.customers_table],
                    dict(self.outbox.take_changelog_offsets()),
                )
            finally:
                self.leads.discard()
                self.customers.discard()
                self.outbox.discard()
                set_current_event(None)
        done = time.perf_counter()
        metrics.BATCH_SECONDS.labels(name).observe(done - started)
        metrics.BATCH_RECORDS.labels(name).observe(len(events))
        for stage, seconds in (
            ("handle", handled - started),
            ("outputs_ack", outputs_acked - handled),
            ("tables", written - outputs_acked),
            ("changelog_ack", done - written),
        ):
            metrics.BATCH_STAGE_SECONDS.labels(stage).observe(seconds)

    def _count_record(self, agent: str, result: str) -> None:
        counter = self._counters.get((agent, result))
        if counter is None:  # label lookups take a lock and a dict walk: once per pair
            counter = self._counters[(agent, result)] = metrics.RECORDS.labels(agent, result)
        counter.inc()

    def _replay_context(self, name: str, event: EventT[Any]) -> ReplayContext | bool | None:
        """None: a live record; a context: replay it; False: a replayed record of a tenant
        outside the replay, skipped entirely."""
        run = self.replay_run
        if run is None or name == "ticks":
            return None
        msg = event.message
        if not run.in_range(str(msg.topic), int(msg.partition), int(msg.offset)):
            return None
        stats = self.sequencer.replay_stats
        if not run.covers(_tenant_of(msg.key)):
            stats.events_skipped += 1
            return False
        stats.events_reread += 1
        return ReplayContext(run.id, run.since)

    async def poll_replay(self) -> None:
        """Every REPLAY_POLL_SECONDS (a Faust timer: no arguments)."""
        await self._poll_replay(check_done=True)

    async def _poll_replay(self, *, check_done: bool) -> None:
        """The current replay run, its stats, and 'done' once the group committed past every
        end offset. The first batch only loads the run (`check_done=False`): it holds the
        batch lock, and asking Kafka for the group's offsets there would stall every agent
        while Kafka is slow."""
        if self.replays is None:
            return
        group = self.app.conf.id
        try:
            run = await self.replays.current(group)
            previous = self.replay_run
            stats = self.sequencer.replay_stats
            if previous is not None and not stats.empty():
                await self.replays.add_stats(previous.id, stats.take())
            # only now: a batch that comes while this call waits loads the run itself
            self.replay_run, self._replay_loaded = run, True
            if run is None:
                metrics.REPLAY_BEHIND.set(0)
                return
            if previous is None or previous.id != run.id:
                log.info("replay %s active: records below %s", run.id, run.end_offsets)
            if run.status == "pending":
                await self.replays.mark_running(run.id)
            if not check_done:
                return
            behind = await self.replays.behind(group, run.end_offsets)
            metrics.REPLAY_BEHIND.set(sum(behind.values()))
            if behind:
                self._replay_progress(run, behind)
                return
            if not stats.empty():
                await self.replays.add_stats(run.id, stats.take())
            await self.replays.finish(run.id)
            log.info("replay %s done", run.id)
            self.replay_run = None
        except Exception:
            self._replay_loaded = True  # batches do not wait on the database: the timer retries
            log.exception("could not read or update replay_runs; retrying later")

    def _replay_progress(self, run: ReplayRun, behind: dict[str, int]) -> None:
        """Logged every REPLAY_PROGRESS_LOG_SECONDS while a run is not done: what is left."""
        now = time.monotonic()
        if now < self._replay_logged_at + REPLAY_PROGRESS_LOG_SECONDS:
            return
        self._replay_logged_at = now
        log.info(
            "replay %s: %d records behind (%s)",
            run.id,
            sum(behind.values()),
            ", ".join(f"{name} {left}" for name, left in sorted(behind.items())),
        )

    def readiness(self) -> dict[str, bool]:
        recovery = getattr(self.app.tables, "recovery", None)
        completed = getattr(recovery, "completed", None)
        return {
            "tables_recovered": bool(completed is not None and completed.is_set()),
            "not_rebalancing": not self.app.rebalancing,
        }

    async def _ensure_tenants(self, events: list[EventT[Any]]) -> None:
        ids = set()
        for key in {event.message.key for event in events}:  # a batch has few tenants
            try:
                ids.add(uuid.UUID(bytes(key or b"").decode()))
            except (ValueError, UnicodeDecodeError, TypeError):
                continue
        if ids:
            try:
                await self.directory.ensure(ids)
            except Exception:  # the database is down: cached configs or defaults meanwhile
                log.exception("tenant lookup failed; using cached or default configuration")

    def _dead_letter(self, event: EventT[Any], reason: str) -> None:
        msg = event.message
        self.outbox.dead_letter(
            DeadLetter(
                str(msg.topic),
                int(msg.partition),
                int(msg.offset),
                msg.key if isinstance(msg.key, bytes) else None,
                msg.value if isinstance(msg.value, bytes) else None,
                reason,
            )
        )

    def _decode(self, model: type[E], event: EventT[Any]) -> E:
        value = event.message.value
        decoded = decode(model, value if isinstance(value, bytes) else None)
        tenant = getattr(decoded, "tenant_id", None)
        if event.message.key != str(tenant).encode():
            raise BadRecord(
                f"record key {event.message.key!r} is not its tenant_id {tenant}: "
                "it would live on another tenant's partition"
            )
        return decoded

    # handlers --------------------------------------------------------------------------------
    def _on_order(self, event: EventT[Any], now: datetime) -> str:
        order = self._decode(OrderEvent, event)
        result = self.sequencer.on_order(order, self.directory.get(order.tenant_id), now)
        return self._count(result)

    def _on_outcome(self, event: EventT[Any], now: datetime) -> str:
        outcome = self._decode(TouchPointOutcome, event)
        result = self.sequencer.on_outcome(outcome, self.directory.get(outcome.tenant_id), now)
        return self._count(result)

    def _on_signal(self, event: EventT[Any], now: datetime) -> str:
        signal = self._decode(ContactSignal, event)
        result = self.sequencer.on_signal(signal, self.directory.get(signal.tenant_id), now)
        return self._count(result)

    def _on_tick(self, event: EventT[Any], now: datetime) -> str:
        partition = event.message.partition
        self._tick_sent.pop(partition, None)
        for raw_id in self.due.pop_due(partition, now.timestamp(), TICK_LIMIT):
            try:
                self._count(self.sequencer.on_due(uuid.UUID(bytes=raw_id), self.directory.get, now))
            except Exception:
                log.exception("tick: could not evaluate lead %s", uuid.UUID(bytes=raw_id))
        if self.due.has_due(partition, now.timestamp()):
            self._send_tick(partition, now.timestamp())
        return "applied"

    @staticmethod
    def _count(result: Result) -> str:
        if result.leads_changed:
            metrics.LEAD_CHANGES.inc(result.leads_changed)
        return _label(result)

    # timer and due index ----------------------------------------------------------------------
    def active_partitions(self) -> set[int]:
        """Partitions of the source topics this worker actively owns (never standbys)."""
        try:
            actives = self.app.assignor.assigned_actives()
        except AttributeError:  # no assignment yet
            return set()
        name = self.order_topic.get_topic_name()
        return {tp.partition for tp in actives if tp.topic == name}

    def _send_tick(self, partition: int, now: float) -> None:
        self._tick_sent[partition] = now
        self.outbox.tick(self.tick_topic.get_topic_name(), partition, str(now).encode())
        metrics.TICKS.inc()

    async def publish_ticks(self) -> None:
        """Every TOUCHPOINT_TICK_SECONDS: a tick for each owned partition with leads due."""
        if self.app.rebalancing:
            return
        now = self.clock().timestamp()
        for partition in sorted(self.active_partitions() & self._indexed):
            sent = self._tick_sent.get(partition)
            if sent is not None and now - sent < TICK_RETRY_SECONDS:
                continue  # the last tick is still on its way
            if self.due.has_due(partition, now):
                self._send_tick(partition, now)
        metrics.DUE_ENTRIES.set(self.due.size())

    async def rebuild_due_index(self) -> None:
        """After recovery: index the leads of newly active partitions, drop lost ones."""
        actives = self.active_partitions()
        for partition in self.due.partitions() - actives:
            self.due.drop(partition)
        self._indexed &= actives
        for partition in sorted(actives - self._indexed):
            count, chunk = 0, []
            for key, raw in self.leads_table.partition_items(partition):
                due, _ = split_record(raw)
                if due is not None:
                    chunk.append((key, due))
                if len(chunk) >= REBUILD_CHUNK:
                    count += self.due.extend(partition, chunk)
                    chunk = []
                    await asyncio.sleep(0)  # keep heartbeats and agents going
            count += self.due.extend(partition, chunk)
            self._indexed.add(partition)
            log.info("due index: partition %d has %d leads waiting", partition, count)

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        name = self.order_topic.get_topic_name()
        for tp in revoked:
            if tp.topic == name:
                self.due.drop(tp.partition)
                self._indexed.discard(tp.partition)

    async def _refresh_tenants(self) -> None:
        try:
            await self.directory.refresh()
        except Exception:
            log.exception("could not reload tenants; keeping the cached configuration")
