"""The HTTP transport the official `sendgrid` library sends through.

The library (its `python_http_client.Client`) builds every request (URL, headers, JSON body)
and turns every answer into its `Response` or its `HTTPError` classes. Left alone it builds a
new urllib opener for each request, and urllib opens a new connection for each one and closes
it after (`Connection: close`): a TCP and a TLS handshake per mail, on both sides. Its seam for
that is `Client._make_request(opener, request, timeout)` ("separated into its own function, so
we can mock it easily"); `KeptAliveClient` sends there through a `ConnectionPool` instead, and
changes nothing else the library does, but one: the opener it builds for every request (ten
urllib handlers, each introspected attribute by attribute) and never uses here. Its module sees
a `urllib.request` whose `build_opener()` returns one opener, built at the first call and shared
from then on, as `urllib.request.urlopen` shares its own (`_SharedOpener`).

What may be reused, and what a failure means (the sender's classes depend on it):
- the pool is last in, first out: at a low rate one warm connection serves every mail;
- a pooled connection idle longer than `idle_seconds` is closed, not reused: servers close idle
  connections, and a request written just as the server closes its end would have no answer
  (an ambiguous send). One the server has already closed, or that has anything to read before
  we write, is dropped the same way;
- as with urllib: a failure to connect, or to write the request, raises `URLError` (the request
  was not complete on the server: nothing was processed); a failure while waiting for or reading
  the answer propagates as it is (it may have been processed). A write that fails on a reused
  connection is tried once more on a new one, since the server cannot have processed it.
- a non-2xx answer raises what the library raises for it (`handle_error`), redirects included:
  a Mail Send is never re-posted elsewhere.
- no proxy: urllib went through HTTPS_PROXY/HTTP_PROXY when set, this does not (nor does the
  Twilio client). `proxy_for` names the variable that would apply, and outbound refuses to start
  rather than fail every mail as unreachable.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import python_http_client.client
from python_http_client import Client
from python_http_client.exceptions import handle_error


class _SharedOpener:
    """`urllib.request` as python_http_client's module sees it, with one difference:
    `build_opener()` without handlers returns the same opener every time (built at the first
    call, so it reads the proxy variables then). The library builds one for every request and
    hands it to `_make_request`, which in `KeptAliveClient` never uses it: a tenth of a mail's
    CPU in outbound (bench/latency/README.md). A plain `Client` still opens through a real
    opener, shared as `urlopen` shares its own."""

    def __init__(self) -> None:
        self._opener: urllib.request.OpenerDirector | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(urllib.request, name)

    def build_opener(self, *handlers: Any) -> urllib.request.OpenerDirector:
        if handlers:
            return urllib.request.build_opener(*handlers)
        if self._opener is None:  # two threads may both build one: either will do
            self._opener = urllib.request.build_opener()
        return self._opener


python_http_client.client.urllib = _SharedOpener()


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer, read before its connection went back to the pool (what the library's
    `Response` reads: `getcode()`, `read()`, `info()`)."""

    status: int
    body: bytes
    headers: Message

    def getcode(self) -> int:
        return self.status

    def read(self) -> bytes:
        return self.body

    def info(self) -> Message:
        return self.headers


class ConnectionPool:
    """Kept-alive HTTP(S) connections to one origin, shared by the threads that send."""

    def __init__(
        self,
        base_url: str,
        *,
        max_idle: int = 32,
        idle_seconds: float = 20.0,
        context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._context = context or (ssl.create_default_context() if self._https else None)
        self._max_idle = max_idle
        self._idle_seconds = idle_seconds
        self._idle: list[tuple[http.client.HTTPConnection, float]] = []
        self._lock = threading.Lock()
        self._closed = False
        self.opened = 0  # connections opened so far (a figure for tests and benches)

    def open(self, request: urllib.request.Request, timeout: float | None) -> Answer:
        """Send `request` and read its whole answer (raises as urllib would, see above)."""
        conn, reused = self._take(timeout)
        while True:
            try:
                self._write(conn, request)
                break
            except OSError as exc:
                conn.close()
                if not reused:
                    raise urllib.error.URLError(exc) from None
                # the server cannot have processed it: once more, on a new connection
                conn, reused = self._new(timeout), False
            except BaseException:
                conn.close()
                raise
        try:
            response = conn.getresponse()
            body = response.read()
        except BaseException:  # it may have been processed: never sent again here
            conn.close()
            raise
        if response.will_close:
            conn.close()
        else:
            self._give_back(conn)
        if not 200 <= response.status < 300:
            error = urllib.error.HTTPError(
                request.full_url, response.status, response.reason, response.msg, io.BytesIO(body)
            )
            raise handle_error(error)
        return Answer(response.status, body, response.msg)

    def close(self) -> None:
        """Close the idle connections; one handed back after this is closed too."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn, _ in idle:
            conn.close()

    @staticmethod
    def _write(conn: http.client.HTTPConnection, request: urllib.request.Request) -> None:
        conn.request(
            request.get_method(), request.selector, request.data, dict(request.header_items())
        )

    def _take(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn, since = self._idle.pop()
            if now - since <= self._idle_seconds and _still_open(conn):
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
                return conn, True
            conn.close()
        return self._new(timeout), False

    def _new(self, timeout: float | None) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            conn.connect()
        except OSError as exc:
            conn.close()
            raise urllib.error.URLError(exc) from None
        with self._lock:
            self.opened += 1
        return conn

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append((conn, time.monotonic()))
                return
        conn.close()


def proxy_for(base_url: str) -> str | None:
    """The environment variable of a proxy urllib would have used for `base_url` (None: none,
    or NO_PROXY exempts its host)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if parts.scheme not in proxies or urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return f"{parts.scheme.upper()}_PROXY"


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """Nothing to read on an idle connection: a server that closed it made it readable (EOF),
    and anything else unasked for is no state to send a request into."""
    sock = conn.sock
    if sock is None:
        return False
    try:  # poll, not select: no limit on the descriptor's number
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


class KeptAliveClient(Client):  # type: ignore[misc]
    """The library's client, sending through `pool` (every client it chains shares it)."""

    def __init__(self, pool: ConnectionPool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool = pool

    def _build_client(self, name: str | None = None) -> KeptAliveClient:
        url_path = [*self._url_path, name] if name else self._url_path
        return KeptAliveClient(
            self._pool,
            host=self.host,
            version=self._version,
            request_headers=self.request_headers,
            url_path=url_path,
            append_slash=self.append_slash,
            timeout=self.timeout,
        )

    def _make_request(
        self, opener: Any, request: urllib.request.Request, timeout: float | None = None
    ) -> Answer:
        return self._pool.open(request, timeout or self.timeout)
