"""The services' event loop: uvloop (libuv) in place of asyncio's pure-Python selector loop.

Every service spends much of its CPU in the loop itself (selecting, scheduling callbacks,
socket transports for aiohttp, aiokafka and psycopg). uvloop does that work in C; the code on
top of it is unchanged, since it implements the same `asyncio.AbstractEventLoop`. Installed as
the policy, so every loop the process makes gets it: `asyncio.run`, the Faust worker's, and
the ones its threads (the consumer thread, the lead projection) make for themselves.
"""

from __future__ import annotations

import asyncio
import logging
from importlib.metadata import version

log = logging.getLogger(__name__)


def use_fast_event_loop() -> None:
    """Make uvloop the event loop policy of this process (before its first loop), and log it."""
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    log.info("event loop: uvloop %s", version("uvloop"))
