"""A lead's timeline from Kafka for the dashboard's lead page: `lead_scan` in a thread (its
consumer blocks), bounded in how far back and how many records it reads, and at most a few
scans at once whatever the number of open pages."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from services.common.kafka.lead_scan import KafkaScan, scan_kafka
from services.common.settings import CommonSettings

#: How far back a lead page reads, and how many records per topic at most.
SINCE = timedelta(days=30)
MAX_SCAN = 50_000


class KafkaLeadTimeline:
    def __init__(self, settings: CommonSettings, *, concurrent: int = 2) -> None:
        self._settings = settings
        self._slots = asyncio.Semaphore(concurrent)

    async def scan(self, *, lead_id: uuid.UUID, tenant_id: uuid.UUID) -> KafkaScan:
        since = datetime.now(UTC) - SINCE
        async with self._slots:
            return await asyncio.to_thread(
                scan_kafka,
                self._settings,
                lead_id=lead_id,
                tenant_id=tenant_id,
                since=since,
                max_scan=MAX_SCAN,
            )
