"""A real HTTP peer on loopback for a test: an aiohttp application served on a free port."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from tests.conftest import free_port


@contextlib.asynccontextmanager
async def serving(
    app: web.Application, *, ssl_context: ssl.SSLContext | None = None, **runner: Any
) -> AsyncIterator[int]:
    """Serve `app` on 127.0.0.1 (over TLS with `ssl_context`; `runner`: AppRunner's options,
    e.g. keepalive_timeout); yields its port."""
    app_runner = web.AppRunner(app, **runner)
    await app_runner.setup()
    port = free_port()
    await web.TCPSite(app_runner, "127.0.0.1", port, ssl_context=ssl_context).start()
    try:
        yield port
    finally:
        await app_runner.cleanup()
