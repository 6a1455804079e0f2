"""`freeze_heap`: what exists when it is called is out of the collector's reach, the young
generation is collected less often, and it says so."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from services.common.heap import freeze_heap


@pytest.fixture
def restore_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def test_the_start_up_heap_is_frozen_and_young_collections_are_rarer(
    restore_collector: None, caplog: pytest.LogCaptureFixture
) -> None:
    built_at_start_up = [{"n": i} for i in range(1_000)]
    older = gc.get_threshold()[1:]
    with caplog.at_level(logging.INFO, logger="services.common.heap"):
        frozen = freeze_heap(10_000)
    assert frozen >= len(built_at_start_up)
    assert gc.get_threshold() == (10_000, *older)
    assert f"heap frozen: {frozen} objects" in caplog.text
    assert not any(o is built_at_start_up for o in gc.get_objects())  # not walked any more


def test_each_generation_can_be_set(restore_collector: None) -> None:
    freeze_heap(20_000, 20, 50)
    assert gc.get_threshold() == (20_000, 20, 50)
