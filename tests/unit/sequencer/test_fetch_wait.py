"""The worker's aiokafka consumer, as the sequencer app builds it, holds a fetch at most
FETCH_MAX_WAIT_MS (Faust asks for 1,500 ms): tests/integration/sequencer/test_fetch_wait.py
shows what the longer wait did to a busy partition."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from services.sequencer.adapters.faust_transport import FETCH_MAX_WAIT_MS, bound_fetch_wait
from tests.unit.sequencer.support import unit_faust_app


async def test_the_worker_consumer_of_the_sequencer_app_holds_a_fetch_briefly(
    tmp_path: Path,
) -> None:
    app = unit_faust_app(tmp_path, "unitfetch.")
    thread = app.consumer._new_consumer_thread()
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    finally:
        await consumer.stop()  # never started: only marks it closed


async def test_the_bound_is_set_before_the_consumer_starts() -> None:
    consumer = AIOKafkaConsumer(bootstrap_servers="localhost:1", fetch_max_wait_ms=1500)
    consumer._fetcher = object()  # started
    try:
        with pytest.raises(RuntimeError, match="before"):
            bound_fetch_wait(consumer)
    finally:
        consumer._fetcher = None
        await consumer.stop()
