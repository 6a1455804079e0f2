"""A small HTTP/1.1 load generator over raw asyncio protocols (keep-alive connections,
pre-built request bytes), cheap enough per request to drive an aiohttp server from one core.

- `fixed_rate`: open loop; request i is due at start + i/rate and its latency is measured from
  that due time (no coordinated omission: a slow server makes later requests late, and that
  lateness counts).
- `closed_loop`: `connections` workers each send the next request as soon as the previous
  answered, for `duration` seconds: the sustained throughput.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field


class _Conn(asyncio.Protocol):
    def __init__(self) -> None:
        self.buf = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc or ConnectionResetError("closed"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.waiter is None:
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        at = head.find(b"content-length:")
        length = 0
        if at >= 0:
            stop = head.find(b"\r\n", at)
            length = int(head[at + 15 : stop if stop > 0 else None])
        total = end + 4 + length
        if len(self.buf) < total:
            return
        status = int(head[9:12])
        del self.buf[:total]
        waiter, self.waiter = self.waiter, None
        waiter.set_result(status)

    async def send(self, raw: bytes) -> int:
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


@dataclass
class Result:
    sent: int = 0
    elapsed: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q / 100.0 * len(ordered)))]

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.sent,
            "seconds": round(self.elapsed, 3),
            "req_per_s": round(self.rate, 1),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": self.errors,
            "p50_ms": round(self.pct(50), 3),
            "p90_ms": round(self.pct(90), 3),
            "p99_ms": round(self.pct(99), 3),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 3),
        }


async def _connect(host: str, port: int, count: int) -> list[_Conn]:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(count):
        _, proto = await loop.create_connection(_Conn, host, port)
        conns.append(proto)
    return conns


async def fixed_rate(
    host: str, port: int, requests: Sequence[bytes], *, rate: float, connections: int = 64
) -> Result:
    """Send every request of `requests` at `rate` per second (open loop)."""
    conns = await _connect(host, port, connections)
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for conn in conns:
        idle.put_nowait(conn)
    result = Result()
    pending: set[asyncio.Task[None]] = set()

    async def one(raw: bytes, due: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.send(raw)
            result.statuses[status] += 1
        except OSError:
            result.errors += 1
        finally:
            result.latencies_ms.append((time.perf_counter() - due) * 1000.0)
            idle.put_nowait(conn)

    start = time.perf_counter()
    interval = 1.0 / rate
    for index, raw in enumerate(requests):
        due = start + index * interval
        delay = due - time.perf_counter()
        if delay > 0.0005:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(raw, due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        result.sent += 1
    await asyncio.gather(*pending)
    result.elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return result


async def closed_loop(
    host: str, port: int, requests: Sequence[bytes], *, duration: float, connections: int = 64
) -> Result:
    """As fast as the server answers, `connections` in flight, for `duration` seconds (or
    until the requests run out)."""
    conns = await _connect(host, port, connections)
    result = Result()
    cursor = iter(requests)
    start = time.perf_counter()
    stop_at = start + duration

    async def worker(conn: _Conn) -> None:
        for raw in cursor:
            began = time.perf_counter()
            if began >= stop_at:
                return
            try:
                status = await conn.send(raw)
                result.statuses[status] += 1
            except OSError:
                result.errors += 1
                return
            result.sent += 1
            result.latencies_ms.append((time.perf_counter() - began) * 1000.0)

    await asyncio.gather(*(worker(c) for c in conns))
    result.elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    return result
