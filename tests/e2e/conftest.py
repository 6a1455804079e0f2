"""The e2e tier's shared fixture: the whole stack of real processes on this test's topics and
the test database (tests/e2e/support.py), stopped and its topics deleted afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Stack, new_stack


@pytest.fixture
def stack(tmp_path: Path, service_env, topics, db_url, kafka_bootstrap) -> Iterator[Stack]:  # type: ignore[no-untyped-def]
    s = new_stack(tmp_path, service_env, topics, db_url, kafka_bootstrap)
    yield s
    for p in reversed(list(s.procs.values())):
        p.stop(10)
    s.delete_topics()  # Faust's changelog/tick topics too, not only the fixture's
