"""librdkafka's threads made SCHED_BATCH (`services/common/kafka/threads.py`), against the real
broker: by the function itself, and by a `batch_threads` producer as it sends, including the
broker threads librdkafka creates after its first send."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from services.common.kafka.producer import KafkaProducer
from services.common.kafka.threads import batch_librdkafka_threads

# Linux only, like the deployment (the policies and /proc/self/task are Linux's).
pytestmark = pytest.mark.integration


def rdk_threads() -> dict[int, str]:
    out = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("rdk:"):
            out[int(task.name)] = comm
    return out


def policies() -> dict[str, int]:
    out = {}
    for tid, comm in rdk_threads().items():
        try:
            out[f"{comm}/{tid}"] = os.sched_getscheduler(tid)
        except OSError:
            continue
    return out


def reset_all() -> None:
    """Every librdkafka thread of this process back to the default policy."""
    for tid in rdk_threads():
        try:
            os.sched_setscheduler(tid, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            continue


async def send_for(producer: KafkaProducer, topic: str, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    i = 0
    while loop.time() < end:
        await producer.send_raw(topic, key=f"tenant-{i % 5}", value=b"x")
        i += 1
        await asyncio.sleep(0.05)


async def test_the_function_changes_each_librdkafka_thread_once(
    kafka_bootstrap: str, topics: Any
) -> None:
    producer = KafkaProducer(kafka_bootstrap, client_id="test-threads").start()
    try:
        await producer.send_raw(topics.order_events, key="t", value=b"x")
        reset_all()
        before = policies()
        assert any(name.startswith("rdk:broker") for name in before), before
        assert os.SCHED_BATCH not in before.values()

        changed = batch_librdkafka_threads()

        assert changed >= len(before)
        assert set(policies().values()) == {os.SCHED_BATCH}
        assert batch_librdkafka_threads() == 0  # already done: nothing to change
    finally:
        await asyncio.to_thread(producer.close)
        reset_all()


@pytest.mark.parametrize("batch_threads", [True, False], ids=["batch-threads", "default"])
async def test_a_batch_threads_producer_keeps_its_threads_sched_batch_as_it_sends(
    kafka_bootstrap: str, topics: Any, batch_threads: bool
) -> None:
    producer = KafkaProducer(
        kafka_bootstrap, client_id="test-threads", poll_in_loop=True, batch_threads=batch_threads
    ).start()
    try:
        await producer.send_raw(topics.order_events, key="t", value=b"x")  # the first check
        reset_all()  # undo it: from here only the later checks (1 s after the first) can act,
        # as they do for the threads of brokers discovered after the first send
        await send_for(producer, topics.order_events, 1.5)

        after = policies()
        assert any(name.startswith("rdk:broker") for name in after), after
        expected = {os.SCHED_BATCH} if batch_threads else {os.SCHED_OTHER}
        assert set(after.values()) == expected, after
    finally:
        await asyncio.to_thread(producer.close)
        reset_all()
