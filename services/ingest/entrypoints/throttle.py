"""The public routes' guard against callers that keep failing authentication: a client address
over its budget of failures (`domain/failure_throttle.py`) gets 429 + Retry-After before its
request costs a signature check, a look-up or a query.

The client address is the peer's, or, behind `TRUSTED_PROXY_HOPS` proxies that append to
`X-Forwarded-For`, the entry that many places from its end (what the outermost trusted proxy
saw; entries further left are the client's own word and never trusted).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from services.ingest.domain.failure_throttle import FailureThrottle

#: Outcomes of a request that failed to authenticate (counted against its address).
AUTH_FAILURES = frozenset({"unauthorized", "unknown_tenant", "unknown_company", "not_configured"})
THROTTLED = "throttled"
MAX_FORWARDED = 2048


class ClientThrottle:
    def __init__(
        self,
        throttle: FailureThrottle,
        *,
        proxy_hops: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.throttle = throttle
        self.proxy_hops = proxy_hops
        self.clock = clock

    def client(self, request: web.Request) -> str:
        peer = request.remote or "unknown"
        if not self.proxy_hops:
            return peer
        forwarded = request.headers.get("X-Forwarded-For", "")[:MAX_FORWARDED]
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        return hops[-self.proxy_hops] if len(hops) >= self.proxy_hops else peer

    def retry_after(self, request: web.Request) -> int | None:
        """Seconds a client over its budget must wait (answered 429); None, at the cost of
        one attribute read when nobody failed lately, for everyone else."""
        if not self.throttle.active:
            return None
        return self.throttle.retry_after(self.client(request), self.clock())

    def note(self, request: web.Request, outcome: str) -> None:
        """Count `outcome` against the client when it is an authentication failure."""
        if outcome in AUTH_FAILURES:
            self.throttle.failed(self.client(request), self.clock())


#: The app's throttle (set by `create_app`; routes mounted without one are not throttled).
THROTTLE = web.AppKey("client_throttle", ClientThrottle)
