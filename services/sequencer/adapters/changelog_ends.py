"""End offsets of the tables' changelog partitions, for the check of local state against them
(tables.py). Asked with librdkafka's admin API in a thread: the Faust consumer is in the middle
of the rebalance that triggers the check."""

from __future__ import annotations

import asyncio
import logging
import time

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]
from faust.types import TP

from services.common.errors import InfrastructureError
from services.common.kafka.admin import admin_client
from services.common.kafka.connection import KafkaConnection

log = logging.getLogger(__name__)


class ChangelogEnds:
    """`await ends(tps)` → each partition's end offset (the offset its next record gets)."""

    def __init__(self, kafka: KafkaConnection, *, timeout: float = 60.0) -> None:
        self._kafka = kafka
        self._timeout = timeout

    async def __call__(self, tps: list[TP]) -> dict[TP, int]:
        return await asyncio.to_thread(self._ends, tps)

    def _ends(self, tps: list[TP]) -> dict[TP, int]:
        """Retried until the partitions are served (a changelog Faust has just created takes
        a moment), each time through a new client (librdkafka keeps stale leader metadata)."""
        deadline = time.monotonic() + self._timeout
        while True:
            latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
            admin = admin_client(self._kafka)
            futures = admin.list_offsets(
                {TopicPartition(tp.topic, tp.partition): latest for tp in tps}, request_timeout=10
            )
            try:
                return {TP(t.topic, t.partition): f.result().offset for t, f in futures.items()}
            except KafkaException as exc:
                if time.monotonic() > deadline:
                    raise InfrastructureError(f"changelog end offsets: {exc}") from exc
                log.debug("changelog end offsets not served yet: %s", exc)
                time.sleep(0.5)
