"""`replay_runs` in PostgreSQL (written by `leadctl replay`) and the group's committed offsets.

The newest 'pending' or 'running' row whose `app_group` is this worker's app id is the current
replay. Each worker adds its stat deltas to the row (`stats` JSONB, summed); the run is 'done'
when the group's committed offset of every partition in `end_offsets` reached its end offset
(i.e. every replayed record was processed, whichever worker owned it); until then the records
still behind, per partition, are the run's progress.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.domain.replay import ReplayRun, parse_tp_key, tp_key
from services.common.kafka.admin import admin_client
from services.common.kafka.connection import KafkaTarget

log = logging.getLogger(__name__)

CURRENT = text(
    """
    SELECT id, tenants, since, end_offsets, status FROM replay_runs
    WHERE app_group = :group AND status IN ('pending', 'running')
    ORDER BY created_at DESC LIMIT 1
    """
)
RUNNING = text("UPDATE replay_runs SET status = 'running' WHERE id = :id AND status = 'pending'")
ADD_STATS = text(
    """
    UPDATE replay_runs SET stats = (
        -- keep what is not a counter (e.g. the CLI's summary object), sum the counters
        SELECT coalesce(
            (SELECT jsonb_object_agg(key, value) FROM jsonb_each(stats)
             WHERE jsonb_typeof(value) <> 'number'), '{}'::jsonb
        ) || coalesce(jsonb_object_agg(k, v), '{}'::jsonb) FROM (
            SELECT k, sum(v)::bigint AS v FROM (
                SELECT key AS k, value::bigint AS v FROM jsonb_each_text(stats)
                WHERE jsonb_typeof(stats -> key) = 'number'
                UNION ALL
                SELECT key, value::bigint FROM jsonb_each_text(CAST(:delta AS jsonb))
            ) parts GROUP BY k
        ) summed
    ) WHERE id = :id
    """
)
FINISH = text(
    """
    UPDATE replay_runs SET status = 'done', finished_at = now()
    WHERE id = :id AND status IN ('pending', 'running')
    """
)


class PostgresReplayRuns:
    """The `ReplayRuns` port."""

    def __init__(self, engine: AsyncEngine, kafka: KafkaTarget) -> None:
        self.engine = engine
        self.kafka = kafka
        self._admin: AdminClient | None = None

    async def current(self, app_group: str) -> ReplayRun | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(CURRENT, {"group": app_group})).first()
        return None if row is None else ReplayRun.from_row(row)

    async def mark_running(self, run_id: uuid.UUID) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(RUNNING, {"id": run_id})

    async def add_stats(self, run_id: uuid.UUID, delta: dict[str, int]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(ADD_STATS, {"id": run_id, "delta": json.dumps(delta)})

    async def finish(self, run_id: uuid.UUID) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(FINISH, {"id": run_id})

    async def behind(self, app_group: str, end_offsets: dict[str, int]) -> dict[str, int]:
        if self._admin is None:
            self._admin = admin_client(self.kafka)
        return await asyncio.get_running_loop().run_in_executor(
            None, records_behind, self._admin, app_group, end_offsets
        )


def records_behind(
    admin: AdminClient, group: str, end_offsets: dict[str, int], timeout: float = 10.0
) -> dict[str, int]:
    """The partitions (`topic:partition`) where `group` has not yet committed its end offset,
    with the records left there; empty once the group passed every end offset.

    Asked with the admin API (OffsetFetch, bounded by `timeout`): a consumer with the
    group's id would hold a group handle whose `close()` can wait without bound while the
    coordinator is unavailable or loading (seen after a broker restart), and this check runs
    on the worker's executor. Raises KafkaException when the broker does not answer in time.
    """
    wanted: list[TopicPartition] = []
    for name, end in end_offsets.items():
        if end > 0:
            wanted.append(TopicPartition(*parse_tp_key(name)))
    if not wanted:
        return {}
    request = [ConsumerGroupTopicPartitions(group, wanted)]
    futures = admin.list_consumer_group_offsets(request, request_timeout=timeout)
    left: dict[str, int] = {}
    for tp in futures[group].result(timeout=timeout + 5.0).topic_partitions:
        name = tp_key((tp.topic, tp.partition))
        end = end_offsets[name]
        done = max(tp.offset, 0) if tp.error is None else 0  # -1001: nothing committed yet
        if done < end:
            left[name] = end - done
    return left
