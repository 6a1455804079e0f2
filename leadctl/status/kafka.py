"""Consumer lag per group and partition and dead-letter counts, asked of Kafka in threads (the
admin calls block) with a bound; an unreachable cluster becomes one error line per figure."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from leadctl.tables import error_line
from services.common.settings import CommonSettings


async def kafka_facts(
    settings: CommonSettings, groups: Sequence[str], kafka_seconds: float
) -> dict[str, Any]:
    from services.common.kafka.lag import consumer_lag, dlq_counts

    kafka, topics = settings.kafka, settings.topics
    lag, dlq = await asyncio.gather(
        asyncio.to_thread(
            consumer_lag, kafka, topics, groups=list(groups) or None, timeout=kafka_seconds
        ),
        asyncio.to_thread(dlq_counts, kafka, topics, timeout=kafka_seconds),
        return_exceptions=True,  # confluent raises KafkaException and bare timeouts alike
    )
    out: dict[str, Any] = {}
    if isinstance(lag, BaseException):
        out["lag_error"] = error_line(lag)
    else:
        out["lag"] = [asdict(r) | {"lag": r.lag} for r in lag]
    if isinstance(dlq, BaseException):
        out["dlq_error"] = error_line(dlq)
    else:
        out["dlq"] = dlq
    return out
