"""The services' event loop is uvloop's: every loop the process makes after the policy is set
(asyncio.run's, a thread's own) is one, and the choice is logged."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from importlib.metadata import version

import pytest
import uvloop

from services.common.event_loop import use_fast_event_loop


@pytest.fixture
def restore_policy() -> Iterator[None]:
    """asyncio's default policy for the test (whatever an earlier test in this process left),
    the policy before it afterwards."""
    before = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(None)
    try:
        yield
    finally:
        asyncio.set_event_loop_policy(before)


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_asyncio_run_and_threads_get_uvloop(
    restore_policy: None, caplog: pytest.LogCaptureFixture
) -> None:
    assert not isinstance(asyncio.run(_running_loop()), uvloop.Loop)  # the default before
    with caplog.at_level(logging.INFO, logger="services.common.event_loop"):
        use_fast_event_loop()
    assert isinstance(asyncio.run(_running_loop()), uvloop.Loop)
    made_in_thread: list[asyncio.AbstractEventLoop] = []

    def in_thread() -> None:  # as the sequencer's consumer thread and projection make theirs
        loop = asyncio.new_event_loop()
        made_in_thread.append(loop)
        loop.close()

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert isinstance(made_in_thread[0], uvloop.Loop)
    assert f"event loop: uvloop {version('uvloop')}" in caplog.text
