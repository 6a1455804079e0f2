"""Read what a test's topic holds, from its beginning, with a throwaway group."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer

from services.common.kafka.config import client_config


def read_topic(bootstrap: str, topic: str, want: int, timeout: float) -> list[Any]:
    """The first `want` records of `topic` (fewer when `timeout` seconds pass first)."""
    consumer = Consumer(
        client_config(
            bootstrap,
            **{
                "group.id": f"reader-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            },
        )
    )
    consumer.subscribe([topic])
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(got) < want and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.5):
                if msg.error() is None:
                    got.append(msg)
    finally:
        consumer.close()
    return got
