"""The HTTP client the official `twilio` library sends through (its documented extension point:
`Client(http_client=…)`). The library still builds every request and parses every answer; this
client only

- sends to TWILIO_API_BASE_URL instead of https://api.twilio.com (the fakes, a proxy). Region
  and edge cannot do this: they only rewrite the host into `api.<edge>.<region>.twilio.com`;
- NEVER retries (AsyncTwilioHttpClient(max_retries=…) re-POSTs after a 5xx: a double SMS);
- enforces separate connect and read timeouts (AsyncTwilioHttpClient ignores its `timeout`),
  so a failure to connect (nothing sent) is told apart from a read timeout (maybe sent);
- keeps the last response's headers in a context variable (Retry-After on a 429).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
from twilio.http import AsyncHttpClient
from twilio.http.response import Response

#: Headers of the last response seen by the current task (asyncio context).
LAST_HEADERS: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "twilio_last_headers", default=None
)


class RoutedAsyncHttpClient(AsyncHttpClient):  # type: ignore[misc]
    def __init__(
        self,
        *,
        base_url: str,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int = 32,
    ) -> None:
        super().__init__(logger=None, is_async=True, timeout=read_timeout)
        parts = urlsplit(base_url.rstrip("/"))
        self._scheme, self._netloc, self._prefix = parts.scheme, parts.netloc, parts.path
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=read_timeout
        )
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    def route(self, url: str) -> str:
        """`https://api.twilio.com/2010-04-01/…` → `<base>/2010-04-01/…`."""
        parts = urlsplit(url)
        return urlunsplit(
            (self._scheme, self._netloc, self._prefix + parts.path, parts.query, parts.fragment)
        )

    def _sess(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size), timeout=self._timeout
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature; ours is fixed)
        allow_redirects: bool = False,
    ) -> Response:
        LAST_HEADERS.set(None)
        basic = aiohttp.BasicAuth(auth[0], auth[1]) if auth else None
        query: Any = {k: str(v) for k, v in (params or {}).items()}
        async with self._sess().request(
            method.upper(),
            self.route(url),
            params=query,
            data=data,
            headers=headers,
            auth=basic,
            allow_redirects=allow_redirects,
        ) as resp:
            text = await resp.text()
            LAST_HEADERS.set(dict(resp.headers))
            return Response(resp.status, text, resp.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
