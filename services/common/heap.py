"""The cyclic garbage collector of a long-running service.

Everything a service builds at start-up (modules, clients, templates, caches) lives as long as
the process, yet the collector walks it again in every full (gen2) collection: 50-120 ms with
the service's whole heap, a stall of its event loop that every request or record in flight
waits out. `freeze_heap` moves that start-up heap out of the collector's reach
(`gc.freeze`), and collects the young generation less often: a webhook or a record allocates
a few hundred container objects that die with it, and at the default 700 a collection ran
every one or two of them.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


#: Young-generation threshold for a service that handles one request or record at a time
#: (ingest, outbound): at the default 700 a young collection ran every one or two of them,
#: ~6 µs a request in ingest (bench/ingest/README.md).
GEN0_THRESHOLD = 10_000


def freeze_heap(
    gen0: int = GEN0_THRESHOLD, gen1: int | None = None, gen2: int | None = None
) -> int:
    """Collect once, freeze what is left, and set the thresholds (`None` keeps the current
    one of that generation). Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(gen0, older if gen1 is None else gen1, oldest if gen2 is None else gen2)
    frozen = gc.get_freeze_count()
    log.info("heap frozen: %d objects, collector thresholds %s", frozen, gc.get_threshold())
    return frozen
