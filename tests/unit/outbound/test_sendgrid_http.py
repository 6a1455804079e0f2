"""The official sendgrid library's requests go through kept-alive connections
(services/outbound/adapters/sendgrid_http.py), against real HTTP peers on loopback: one
connection serves many mails, a connection the server closed is never written to, and what a
failure means to the sender (safe to retry, or maybe sent) is what it was with urllib."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import struct
import subprocess
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from fakes.sendgrid_server import create_app
from services.common.errors import ConfigError
from services.outbound.adapters.sendgrid_http import ConnectionPool, KeptAliveClient
from services.outbound.adapters.sendgrid_sender import SendGridSender
from services.outbound.domain.model import Found, Probe
from services.outbound.errors import ProviderAmbiguous, ProviderUnavailable
from tests.support.http_peer import serving
from tests.unit.outbound.support import OPEN_NOW, email_message

KEY = "SG.test-key"


class Peer:
    """The fake SendGrid, noting the client port of every request (one per connection)."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        self.url = ""

    @property
    def connections(self) -> int:
        return len(set(self.ports))

    def app(self) -> web.Application:
        app = create_app(api_key=KEY)

        @web.middleware
        async def note_peer(
            request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
        ) -> web.StreamResponse:
            assert request.transport is not None
            self.ports.append(request.transport.get_extra_info("peername")[1])
            return await handler(request)

        app.middlewares.append(note_peer)
        return app


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    p = Peer()
    async with serving(p.app()) as port:
        p.url = f"http://127.0.0.1:{port}"
        yield p


def sender(url: str, executor: ThreadPoolExecutor, timeout: float = 2.0) -> SendGridSender:
    return SendGridSender(
        api_key=KEY, base_url=url, timeout=timeout, executor=executor, reconcile="none"
    )


async def test_one_connection_serves_many_mails(peer: Peer, executor: ThreadPoolExecutor) -> None:
    mail = sender(peer.url, executor)
    ids = [await mail.send(email_message()) for _ in range(20)]
    assert len(set(ids)) == 20 and len(peer.ports) == 20
    assert peer.connections == 1 and mail.pool.opened == 1  # urllib: 20
    await mail.close()


async def test_the_library_builds_no_opener_per_mail(
    peer: Peer, executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """python_http_client builds a urllib opener for every request, unused by the pool: it
    gets one shared opener instead (without that: one `build_opener` per mail)."""
    built: list[object] = []
    real = urllib.request.build_opener

    def counted(*handlers: Any) -> urllib.request.OpenerDirector:
        built.append(handlers)
        return real(*handlers)

    monkeypatch.setattr(urllib.request, "build_opener", counted)
    mail = sender(peer.url, executor)
    for _ in range(10):
        await mail.send(email_message())
    assert len(peer.ports) == 10
    assert len(built) <= 1
    await mail.close()


async def test_concurrent_mails_open_no_more_connections_than_threads(
    peer: Peer, executor: ThreadPoolExecutor
) -> None:
    mail = sender(peer.url, executor)
    for _ in range(5):
        await asyncio.gather(*(mail.send(email_message()) for _ in range(12)))
    assert len(peer.ports) == 60
    assert peer.connections <= 4  # the executor's threads
    await mail.close()


async def test_a_connection_the_server_closed_is_not_written_to(
    executor: ThreadPoolExecutor,
) -> None:
    """The server closes idle connections after 0.1 s. A request written into the closed one
    would get no answer: an Email Activity query unanswered (small: one write that succeeds),
    or a mail ambiguous, marked unknown. Each goes on a new connection instead."""
    peer = Peer()
    async with serving(peer.app(), keepalive_timeout=0.1) as port:
        peer.url = f"http://127.0.0.1:{port}"
        mail = SendGridSender(
            api_key=KEY, base_url=peer.url, timeout=2, executor=executor, reconcile="activity"
        )
        msg = email_message()
        sent = await mail.send(msg)
        await asyncio.sleep(0.4)
        found = await mail.lookup(Probe.of(msg), since=OPEN_NOW)
        assert isinstance(found, Found) and found.provider_message_id.startswith(sent)
        await asyncio.sleep(0.4)
        await mail.send(email_message())  # no ProviderAmbiguous
        assert len(peer.ports) == 3 and peer.connections == 3
        await mail.close()


async def test_a_connection_idle_too_long_is_closed_not_reused(
    peer: Peer, executor: ThreadPoolExecutor
) -> None:
    pool = ConnectionPool(peer.url, idle_seconds=1.0)
    client = KeptAliveClient(pool, host=peer.url, request_headers=auth(), version=3)

    def post() -> int:
        return int(client.mail.send.post(request_body=email_body(), timeout=2).status_code)

    assert await asyncio.to_thread(post) == 202
    assert await asyncio.to_thread(post) == 202
    await asyncio.sleep(1.3)
    assert await asyncio.to_thread(post) == 202
    assert pool.opened == 2 and peer.connections == 2
    pool.close()


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}", "Accept": "application/json"}


def email_body() -> dict[str, Any]:
    from services.outbound.adapters.sendgrid_sender import build_mail

    return build_mail(email_message())


async def test_errors_are_the_library_s_and_leave_the_connection_usable(
    peer: Peer, executor: ThreadPoolExecutor
) -> None:
    mail = SendGridSender(
        api_key="SG.wrong", base_url=peer.url, timeout=2, executor=executor, reconcile="none"
    )
    for _ in range(3):
        with pytest.raises(ProviderUnavailable, match="sendgrid_401"):
            await mail.send(email_message())
    assert peer.connections == 1
    await mail.close()


async def test_an_answer_that_never_comes_is_ambiguous_and_not_sent_again(
    executor: ThreadPoolExecutor,
) -> None:
    """The server reads the whole request and hangs up: it may have queued the mail. The
    transport must neither retry it on a new connection nor call it safe to retry."""
    requests: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(
            next(
                line.split(b":", 1)[1]
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
        )
        requests.append(head + await reader.readexactly(length))
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        mail = sender(f"http://127.0.0.1:{port}", executor)
        with pytest.raises(ProviderAmbiguous, match="no response"):
            await mail.send(email_message())
        assert len(requests) == 1
        await mail.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_a_redirect_is_not_followed(executor: ThreadPoolExecutor) -> None:
    """A 3xx is never followed (a Mail Send re-posted elsewhere): nothing was processed, so
    it is retried later, as an outage (the base URL is wrong), not the lead's mail failed."""
    seen: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(status=307, headers={"Location": "/elsewhere"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", moved)
    async with serving(app) as port:
        mail = sender(f"http://127.0.0.1:{port}", executor)
        with pytest.raises(ProviderUnavailable, match="sendgrid_307"):
            await mail.send(email_message())
        assert seen == ["/v3/mail/send"]
        await mail.close()


def self_signed(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


async def test_https_verifies_the_certificate_and_keeps_the_connection(
    tmp_path: Path, executor: ThreadPoolExecutor
) -> None:
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    peer = Peer()
    async with serving(peer.app(), ssl_context=tls) as port:
        url = f"https://127.0.0.1:{port}"
        untrusted = sender(url, executor)  # the system's CAs: this certificate is nobody's
        with pytest.raises(ProviderUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.send(email_message())
        assert peer.ports == []

        pool = ConnectionPool(url, context=ssl.create_default_context(cafile=str(cert)))
        client = KeptAliveClient(pool, host=url, request_headers=auth(), version=3)
        for _ in range(5):
            answer = await asyncio.to_thread(
                lambda: client.mail.send.post(request_body=email_body(), timeout=2)
            )
            assert answer.status_code == 202 and answer.headers.get("X-Message-Id")
        assert pool.opened == 1 and peer.connections == 1  # one handshake
        pool.close()


def test_only_http_urls() -> None:
    with pytest.raises(ValueError, match="not an http"):
        ConnectionPool("ftp://sendgrid.example")


async def test_a_connection_numbered_above_1024_is_kept_too(
    peer: Peer, executor: ThreadPoolExecutor
) -> None:
    """select() refuses descriptors from 1024 up (a busy process has that many): the pool
    would then drop every connection, silently. It polls instead."""
    import os
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    fillers = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    try:
        mail = sender(peer.url, executor)
        for _ in range(5):
            await mail.send(email_message())
        assert mail.pool.opened == 1 and peer.connections == 1
        [(conn, _)] = mail.pool._idle
        assert conn.sock is not None and conn.sock.fileno() >= 1024
        await mail.close()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class RawPeer:
    """An HTTP/1.1 server on a bare socket, scripted per request: "ok" answers 202 and keeps
    the connection, "hang up" reads the whole request and closes without an answer, "reset"
    answers 202 and then resets the connection (RST) a moment later."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests: list[tuple[int, bytes]] = []  # (connection number, request)
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                return
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            self.requests.append((number, head + await reader.readexactly(length)))
            action = self.script.pop(0) if self.script else "ok"
            if action == "hang up":
                writer.close()
                return
            writer.write(
                b"HTTP/1.1 202 Accepted\r\nX-Message-Id: m"
                + str(len(self.requests)).encode()
                + b"\r\nContent-Length: 0\r\n\r\n"
            )
            await writer.drain()
            if action == "reset":
                await asyncio.sleep(0.05)
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return


@contextlib.asynccontextmanager
async def raw_peer(script: list[str]) -> AsyncIterator[tuple[RawPeer, str]]:
    peer = RawPeer(script)
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    try:
        yield peer, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        await server.wait_closed()


async def test_no_answer_on_a_reused_connection_is_ambiguous_and_not_sent_again(
    executor: ThreadPoolExecutor,
) -> None:
    """The second mail goes on the kept connection; the server reads it and hangs up. It may
    have been queued: ambiguous, and never re-sent on a new connection."""
    async with raw_peer(["ok", "hang up"]) as (peer, url):
        mail = sender(url, executor)
        await mail.send(email_message())
        with pytest.raises(ProviderAmbiguous, match="no response"):
            await mail.send(email_message())
        assert [n for n, _ in peer.requests] == [1, 1]  # both on the first connection
        assert mail.pool.opened == 1 and peer.connections == 1
        await mail.close()


async def test_a_write_that_fails_on_a_reused_connection_goes_once_on_a_new_one(
    executor: ThreadPoolExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the readability check cannot close: the server resets the kept connection
    after the check. The request could not reach it whole (the write failed): it is sent on a
    new connection, and reaches the server exactly once."""
    from services.outbound.adapters import sendgrid_http

    async with raw_peer(["reset"]) as (peer, url):
        mail = sender(url, executor)
        await mail.send(email_message())
        await asyncio.sleep(0.3)  # the reset has arrived
        monkeypatch.setattr(sendgrid_http, "_still_open", lambda conn: True)
        await mail.send(email_message())
        assert [n for n, _ in peer.requests] == [1, 2]
        assert mail.pool.opened == 2
        await mail.close()


def test_a_proxy_the_library_would_have_used_stops_outbound_at_start(
    monkeypatch: pytest.MonkeyPatch, executor: ThreadPoolExecutor
) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    with pytest.raises(ConfigError, match="HTTPS_PROXY"):
        sender("https://api.sendgrid.com", executor)
    monkeypatch.setenv("NO_PROXY", "api.sendgrid.com")
    sender("https://api.sendgrid.com", executor)  # exempt: starts
