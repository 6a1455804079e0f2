"""The worker's aiokafka consumer, as the sequencer app builds it, holds a fetch at most
FETCH_MAX_WAIT_MS (Faust asks for 1,500 ms): tests/integration/sequencer/test_fetch_wait.py
shows what the longer wait did to a busy partition."""

from __future__ import annotations

from pathlib import Path

from services.sequencer.adapters.faust_transport import FETCH_MAX_WAIT_MS
from services.sequencer.entrypoints.faust_app import faust_app
from services.sequencer.settings import SequencerSettings


async def test_the_worker_consumer_of_the_sequencer_app_holds_a_fetch_briefly(
    tmp_path: Path,
) -> None:
    settings = SequencerSettings(
        kafka_topic_prefix="unitfetch.",
        kafka_partitions=4,
        sequencer_store="memory://",
        sequencer_data_dir=tmp_path,
    )
    app = faust_app(settings)
    thread = app.consumer._new_consumer_thread()
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500
    finally:
        await consumer.stop()  # never started: only marks it closed
