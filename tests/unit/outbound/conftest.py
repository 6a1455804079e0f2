"""Fixtures shared by outbound's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    """The thread pool a SendGrid sender runs the library in (4 threads)."""
    pool = ThreadPoolExecutor(4)
    yield pool
    pool.shutdown(wait=False)
