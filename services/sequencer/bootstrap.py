"""Composition root of the sequencer: builds every adapter from the settings, once.

`build(settings)` returns a `Runtime` holding the Faust worker (`build_worker`: its tables, the
use cases, the batch loop, the timer and the replay coordination, over the librdkafka outbox,
the PostgreSQL tenant directory and `replay_runs`), the health/metrics server and, unless
disabled, the `lead-projection` consumer thread. `Runtime.run()` blocks in the Faust worker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import faust
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas.base import utcnow
from services.common.db.engine import async_engine
from services.common.heap import freeze_heap
from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.dlq import DeadLetters
from services.common.kafka.producer import KafkaProducer
from services.sequencer.adapters.changelog_ends import ChangelogEnds
from services.sequencer.adapters.outbox import KafkaOutbox
from services.sequencer.adapters.projection import Projection
from services.sequencer.adapters.replay_pg import PostgresReplayRuns
from services.sequencer.adapters.table_stores import PartitionSchedule, TableStores
from services.sequencer.adapters.tenant_directory import PostgresDirectory
from services.sequencer.domain.due_index import DueIndex
from services.sequencer.entrypoints.faust_app import (
    FaustAssignment,
    SequencerApp,
    faust_app,
    tick_topic,
)
from services.sequencer.entrypoints.web import HealthServer
from services.sequencer.ports import Directory, Outputs, ReplayRuns
from services.sequencer.service_layer.batches import BatchProcessor
from services.sequencer.service_layer.replay import ReplayCoordinator
from services.sequencer.service_layer.sequencer import Sequencer
from services.sequencer.service_layer.ticks import Ticks
from services.sequencer.settings import SequencerSettings

log = logging.getLogger(__name__)
SERVICE = "sequencer"


def build_worker(
    settings: SequencerSettings,
    *,
    outbox: Outputs,
    directory: Directory,
    replays: ReplayRuns | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> SequencerApp:
    """The Faust worker: its tables, the use cases over them, the timer, the replay
    coordination and the batch loop, under the agents and timers of `SequencerApp`."""
    app = faust_app(settings)
    tables = TableStores.create(
        app, settings, sink=outbox, changelog_ends=ChangelogEnds(settings.kafka)
    )
    due = DueIndex()
    sequencer = Sequencer(
        leads=tables.leads,
        customers=tables.customers,
        outbox=outbox,
        schedule=PartitionSchedule(due),
    )
    replay = ReplayCoordinator(replays, app_group=settings.app_id, stats=sequencer.replay_stats)
    ticks = Ticks(
        sequencer=sequencer,
        directory=directory,
        outputs=outbox,
        assignment=FaustAssignment(app, settings.topics.order_events),
        hints=tables.leads,
        due=due,
        topic=tick_topic(settings),
        clock=clock,
    )
    batches = BatchProcessor(
        sequencer=sequencer,
        directory=directory,
        outputs=outbox,
        tables=tables,
        replay=replay,
        clock=clock,
    )
    return SequencerApp(app, settings, tables=tables, batches=batches, ticks=ticks, replay=replay)


def projection_fetch(wait_ms: int) -> dict[str, int]:
    """The projection consumer's fetch: held by the broker up to `wait_ms` for 1 MiB of lead
    changes (a backlog fills it at once). At 200 orders/s a fetch otherwise brought a change or
    two, each its own fetch request, poll and transaction."""
    if wait_ms <= 0:
        return {}
    return {"fetch.wait.max.ms": wait_ms, "fetch.min.bytes": 1 << 20}


def build_projection(settings: SequencerSettings, producer: KafkaProducer) -> Projection:
    consumer = AtLeastOnceConsumer(
        settings.kafka,
        group_id=f"{settings.kafka_topic_prefix}{settings.projection_group_id}",
        topics=[settings.topics.lead_changes],
        client_id="lead-projection",
        **projection_fetch(settings.projection_fetch_wait_ms),
    )
    return Projection(
        consumer, settings.libpq_url, DeadLetters(producer, service="lead-projection")
    )


@dataclass
class Runtime:
    settings: SequencerSettings
    producer: KafkaProducer
    engine: AsyncEngine
    sequencer: SequencerApp
    health: HealthServer
    projection: Projection | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def app(self) -> faust.App:
        return self.sequencer.app

    def start_projection(self) -> None:
        if self.projection is None:
            return
        projection = self.projection
        self._thread = threading.Thread(
            target=projection.run, args=(self._stop,), name="lead-projection", daemon=True
        )
        self._thread.start()
        log.info("lead projection consuming %s", self.settings.topics.lead_changes)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.projection is not None:
            self.projection.close()
        self.producer.close()

    def run(self) -> None:
        """The Faust worker (blocks until SIGTERM/SIGINT), then everything is closed."""
        self.app.conf.datadir.mkdir(parents=True, exist_ok=True)  # Faust makes only the leaf
        worker = faust.Worker(
            self.app,
            self.health,
            loglevel=self.settings.log_level.upper(),
            override_logging=False,
            redirect_stdouts=False,
            quiet=True,  # no banner or spinner: logs are the only output (one readable stream)
        )
        self.start_projection()
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # GC's generations, and collect less often (fewer full-heap pauses on the hot path).
        freeze_heap(20_000, 20, 50)
        try:
            worker.execute_from_commandline()
        finally:
            self.close()


def build(settings: SequencerSettings, *, projection: bool | None = None) -> Runtime:
    producer = KafkaProducer(
        settings.kafka,
        client_id=SERVICE,
        # never expire a record locally: the outbox acknowledges a partition's run of records
        # by its last one, so an earlier one timing out alone would go unnoticed; an outage
        # pauses the sequencer instead (message.timeout.ms 0 = retry until delivered)
        config={"linger.ms": 2.0, "message.timeout.ms": 0},
    ).start()
    engine = async_engine(settings.sqlalchemy_url, pool_size=2)
    outbox = KafkaOutbox(producer, settings.topics)
    directory = PostgresDirectory(
        engine, settings.sequencer_default_timezone, ttl=settings.tenant_cache_seconds
    )
    sequencer = build_worker(
        settings,
        outbox=outbox,
        directory=directory,
        replays=PostgresReplayRuns(engine, settings.kafka),
    )

    async def ready() -> dict[str, Any]:
        return sequencer.readiness()

    health = HealthServer(
        host=settings.sequencer_host, port=settings.sequencer_port, ready=ready, loop=None
    )
    run_projection = settings.sequencer_projection if projection is None else projection
    return Runtime(
        settings=settings,
        producer=producer,
        engine=engine,
        sequencer=sequencer,
        health=health,
        projection=build_projection(settings, producer) if run_projection else None,
    )
