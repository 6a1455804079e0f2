"""The sequencer's HTTP endpoints (/healthz, /readyz, /metrics) as a service of the worker.

Faust's own web stack is disabled (it would bind 6066 on every worker); this small aiohttp
server starts with the worker, before table recovery, so liveness answers during a long
recovery while /readyz says whether the tables are ready.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from mode import Service

from services.common.observability import ReadyCheck, add_observability_routes

log = logging.getLogger(__name__)


class HealthServer(Service):
    def __init__(self, *, host: str, port: int, ready: ReadyCheck, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.host = host
        self.port = port
        self.ready = ready
        self._runner: web.AppRunner | None = None

    async def on_start(self) -> None:
        app = web.Application()
        add_observability_routes(app, service="sequencer", ready=self.ready)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("sequencer health and metrics on http://%s:%d", self.host, self.port)

    async def on_stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
