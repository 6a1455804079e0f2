"""Second baseline of the sequencer benchmark: a Faust worker on the same client stack as
the sequencer (faust-streaming + aiokafka, the same batching and manual acks) whose agent
does nothing with the records. It bounds what any Faust worker can do on this machine.

    python bench/sequencer/faust_noop.py TOPIC COUNT BOOTSTRAP PARTITIONS

Prints `RESULT <events/s>` (from its first record to its COUNT-th) and exits.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid

import faust


def main() -> None:
    topic, count, bootstrap, partitions = sys.argv[1:5]
    total = int(count)
    app = faust.App(
        f"bench-faust-noop-{uuid.uuid4().hex[:8]}",
        broker=[f"kafka://{b}" for b in bootstrap.split(",")],
        store="memory://",
        datadir=tempfile.mkdtemp(prefix="bench-noop-"),
        web_enabled=False,
        topic_partitions=int(partitions),
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=1.0,
        stream_buffer_maxsize=4096,
    )
    source = app.topic(
        topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    seen = {"n": 0, "t0": 0.0}

    @app.agent(source)
    async def noop(stream):  # type: ignore[no-untyped-def]
        async for events in stream.noack_take(1000, 0.02):
            if not seen["n"]:
                seen["t0"] = time.perf_counter()
            seen["n"] += len(events)
            for event in events:
                await stream.ack(event)
            if seen["n"] >= total:
                rate = (total - 1) / max(time.perf_counter() - seen["t0"], 1e-9)
                # Faust redirects sys.stdout into its logger: write to the real one
                print(f"RESULT {rate:.1f}", file=sys.__stdout__, flush=True)
                os._exit(0)

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


if __name__ == "__main__":
    main()
