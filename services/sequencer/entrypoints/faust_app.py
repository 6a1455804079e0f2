"""The Faust application `lead-sequencer`: its topics, agents and timers (DESIGN §2–5).

Agents (all their topics keyed by tenant, all with KAFKA_PARTITIONS partitions):
- `live`     leads.order-events.v1 (source `orders`): create/update leads, plan and emit the
             first step; and leads.touchpoint-outcomes.v1 (source `outcomes`): sent →
             contacted, skipped/failed per reason, deferred → the same command again at
             deferred_until;
- `signals`  leads.contact-signals.v1: engagement, opt-outs, bounces, business progress;
- `ticks`    an internal topic: the timer's tick records (service_layer/ticks.py).

Orders and outcomes share one agent, so one batch takes whatever of both is queued. A batch
holds the batch lock through two rounds of Kafka acknowledgements (its outputs, then its
changelog); as two agents, an order waited for the outcomes' batch and its acknowledgements
as often as for its own (at 200 orders/s the lock was held ~75 % of the time waiting for
acknowledgements, ~60 batches a second, half of them outcomes: bench/latency/README.md).

Each agent takes records in batches (`take.take_ready`: at once when nothing more is queued,
up to SEQUENCER_BATCH_SIZE within SEQUENCER_BATCH_MS when records pile up), has the batch loop
process them (service_layer/batches.py) and acks the batch only after that.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import faust

from services.common.kafka.admin import ensure_topics
from services.sequencer.adapters.faust_transport import (
    Transport,
    broker_credentials,
    keep_current_records_on_resume,
)
from services.sequencer.adapters.table_stores import TABLE_NAMES, TableStores
from services.sequencer.adapters.tables import raw_schema
from services.sequencer.entrypoints.take import take_ready
from services.sequencer.service_layer.batches import BatchProcessor, Source
from services.sequencer.service_layer.replay import ReplayCoordinator
from services.sequencer.service_layer.ticks import TICK_BATCH_SIZE, Ticks
from services.sequencer.settings import SequencerSettings


def brokers(bootstrap: str) -> list[str]:
    return [f"kafka://{host.strip()}" for host in bootstrap.split(",") if host.strip()]


def tick_topic(settings: SequencerSettings) -> str:
    """The internal topic of the timer's tick records."""
    return f"{settings.app_id}-ticks"


#: the ticks topic keeps an hour: a tick is only a wake-up call
TICK_RETENTION = timedelta(hours=1)


def internal_topics(settings: SequencerSettings) -> list[str]:
    """Topics the Faust app creates itself: the tables' changelogs and the ticks topic."""
    return list(internal_topic_configs(settings))


def internal_topic_configs(settings: SequencerSettings) -> dict[str, dict[str, str]]:
    """Each topic the Faust app declares, with the configuration Faust gives it (its
    replication and min ISR come from the settings, as for every topic)."""
    compacted = {"cleanup.policy": "compact"}
    configs = {f"{settings.app_id}-{name}-changelog": compacted for name in TABLE_NAMES}
    configs[tick_topic(settings)] = {
        "cleanup.policy": "delete",
        "retention.ms": str(int(TICK_RETENTION.total_seconds() * 1000)),
    }
    return configs


def declare_internal_topics(settings: SequencerSettings) -> None:
    """Create the Faust app's topics before the worker joins its group, and wait until they
    are served. Faust declares them itself at start, but its first assignment may come
    before the broker's metadata shows a topic just created: the assignor then says
    "Ignoring missing topic" and the worker owns no partition of it until a rebalance (no
    ticks: no step fell due; seen under load). Existing topics are left as they are."""
    for name, config in internal_topic_configs(settings).items():
        ensure_topics(
            settings.kafka,
            partitions=settings.kafka_partitions,
            replication=settings.kafka_replication_factor,
            min_insync=settings.kafka_min_insync,
            names=[name],
            config=config,
        )


def faust_app(settings: SequencerSettings) -> faust.App:
    """The Faust app, its id (= consumer group) behind the topic prefix so isolated
    environments share nothing. Its topics (changelogs, ticks) get KAFKA_REPLICATION_FACTOR
    replicas; its clients the transport settings every other client has."""
    app = faust.App(
        settings.app_id,
        broker=brokers(settings.kafka_bootstrap_servers),
        broker_credentials=broker_credentials(settings.kafka),
        store=settings.sequencer_store,
        # one state directory per app id (topic prefix): the RocksDB of another deployment
        # on this disk never meets this one's changelogs
        datadir=str(settings.sequencer_data_dir / "{conf.name}"),
        topic_partitions=settings.kafka_partitions,
        topic_replication_factor=settings.kafka_replication_factor,
        topic_disable_leader=True,
        table_standby_replicas=1,
        web_enabled=False,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.sequencer_session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.sequencer_session_timeout_seconds / 3),
        consumer_auto_offset_reset="earliest",
        stream_buffer_maxsize=max(4096, 4 * settings.sequencer_batch_size),
        processing_guarantee="at_least_once",
    )
    # kafka:// whose seek back to committed offsets also seeks to 0 (faust_transport.py)
    app.transport = Transport(app.conf.broker_consumer, app)
    # resuming after recovery keeps the records fetched meanwhile (faust_transport.py)
    keep_current_records_on_resume(app)
    return app


class FaustAssignment:
    """`Assignment` port: the partitions of `topic` the app's consumer owns."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic

    def active_partitions(self) -> set[int]:
        try:
            actives = self.app.assignor.assigned_actives()
        except AttributeError:  # no assignment yet
            return set()
        return {tp.partition for tp in actives if tp.topic == self.topic}

    def rebalancing(self) -> bool:
        return bool(self.app.rebalancing)


class SequencerApp:
    """The worker's topology over the service layer; `bootstrap.build_worker` wires it."""

    def __init__(
        self,
        app: faust.App,
        settings: SequencerSettings,
        *,
        tables: TableStores,
        batches: BatchProcessor,
        ticks: Ticks,
        replay: ReplayCoordinator,
    ) -> None:
        self.app = app
        self.settings = settings
        self.tables = tables
        self.batches = batches
        self.ticks = ticks
        self.replay = replay
        self.batch_size = settings.sequencer_batch_size
        self.batch_seconds = settings.sequencer_batch_ms / 1000
        topics = settings.topics
        self.order_events = topics.order_events  # the partitions the ticks follow
        self.signal_topic = app.topic(topics.contact_signals, schema=raw_schema())
        self.tick_topic = app.topic(
            ticks.topic,
            internal=True,
            partitions=settings.kafka_partitions,
            retention=TICK_RETENTION,
            schema=raw_schema(),
            config={"min.insync.replicas": str(settings.kafka_min_insync)},
        )
        self.live_topic = app.topic(
            topics.order_events, topics.touchpoint_outcomes, schema=raw_schema()
        )
        self.live_agent = self._agent(
            "live",
            self.live_topic,
            {
                topics.order_events: Source("orders", batches.on_order),
                topics.touchpoint_outcomes: Source("outcomes", batches.on_outcome),
            },
        )
        self.signal_agent = self._agent(
            "signals",
            self.signal_topic,
            {topics.contact_signals: Source("signals", batches.on_signal)},
        )
        self.tick_agent = self._agent(
            "ticks",
            self.tick_topic,
            {ticks.topic: Source("ticks", ticks.on_tick)},
            TICK_BATCH_SIZE,
            background=True,
        )
        app.timer(settings.touchpoint_tick_seconds, name="publish_ticks")(ticks.publish)
        # every tenant's configuration reloaded as often as TENANT_CACHE_SECONDS (0: each minute)
        refresh = settings.tenant_cache_seconds or 60.0
        app.timer(refresh, name="refresh_tenants")(batches.refresh_tenants)
        if replay.runs is not None:
            app.timer(settings.replay_poll_seconds, name="replay_poll")(replay.poll)
        tables.leads_table.on_recover(ticks.rebuild)
        app.on_partitions_revoked.connect(self._on_revoked)  # type: ignore[arg-type]

    def _agent(
        self,
        name: str,
        channel: Any,
        sources: dict[str, Source],
        size: int | None = None,
        *,
        background: bool = False,
    ) -> Any:
        batches, batch_size = self.batches, size or self.batch_size

        async def run(stream: Any) -> None:
            async for events in take_ready(stream, batch_size, self.batch_seconds):
                await batches.process(name, events, sources, background=background)
                for event in events:
                    await stream.ack(event)

        return self.app.agent(channel, name=name)(run)

    def readiness(self) -> dict[str, bool]:
        recovery = getattr(self.app.tables, "recovery", None)
        completed = getattr(recovery, "completed", None)
        return {
            "tables_recovered": bool(completed is not None and completed.is_set()),
            "not_rebalancing": not self.app.rebalancing,
        }

    async def _on_revoked(self, sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        revoked: Iterable[Any] = args[0] if args else kwargs.get("revoked", set())
        name = self.order_events
        self.ticks.revoked(tp.partition for tp in revoked if tp.topic == name)
