"""When a lead's first message passed each hop of the pipeline, carried in Kafka headers.

A webhook's order event, the command the sequencer decides on it and the outcome outbound
publishes carry `hop.<name>` headers (microseconds since the epoch, ASCII): each service copies
the hops of the record it handles onto the records it writes and adds its own, so the outcome
of a first message tells where its time went (`bench/latency` prints the breakdown). The
record in hand is the current `Trace` (a context variable), so adapters stamp and read it
without every port taking it: the webhook route starts one, the Kafka producers write it.

Only `hop.` headers are copied, at most `MAX_HOPS` of them, each a bounded integer: a forged or
huge header of a producer upstream cannot grow records downstream.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterable, Mapping

from services.common.domain.dead_letter import Headers

PREFIX = "hop."
WEBHOOK_RECEIVED = "webhook_received"
ORDER_IN_KAFKA = "order_in_kafka"
SEQUENCER_DECIDED = "sequencer_decided"
COMMAND_IN_KAFKA = "command_in_kafka"
OUTBOUND_CLAIMED = "outbound_claimed"
PROVIDER_ANSWERED = "provider_answered"
#: In pipeline order.
HOPS = (
    WEBHOOK_RECEIVED,
    ORDER_IN_KAFKA,
    SEQUENCER_DECIDED,
    COMMAND_IN_KAFKA,
    OUTBOUND_CLAIMED,
    PROVIDER_ANSWERED,
)
MAX_HOPS = len(HOPS)
_KNOWN = frozenset(HOPS)
#: Microseconds since the epoch fit 16 digits until the year 2286.
_MAX_DIGITS = 16


def now_us() -> int:
    return time.time_ns() // 1000


class Trace:
    """The hops a record has passed, by name (microseconds since the epoch)."""

    __slots__ = ("hops",)

    def __init__(self, hops: dict[str, int] | None = None) -> None:
        self.hops: dict[str, int] = dict(hops or {})

    @classmethod
    def of(cls, headers: Iterable[tuple[str, object]] | Mapping[str, object] | None) -> Trace:
        """The known hops in `headers` (anything else, malformed or unknown, ignored)."""
        hops: dict[str, int] = {}
        pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
        for key, value in pairs:
            name = key[len(PREFIX) :] if isinstance(key, str) and key.startswith(PREFIX) else ""
            if name not in _KNOWN or len(hops) >= MAX_HOPS:
                continue
            raw = value.decode("ascii", "replace") if isinstance(value, bytes) else value
            if isinstance(raw, str) and raw.isdigit() and len(raw) <= _MAX_DIGITS:
                hops[name] = int(raw)
        return cls(hops)

    def stamp(self, name: str, at_us: int | None = None) -> None:
        """Record hop `name` (now unless `at_us`); the first stamp of a hop is kept."""
        self.hops.setdefault(name, now_us() if at_us is None else at_us)

    def headers(self) -> Headers:
        return [(PREFIX + name, str(at).encode()) for name, at in self.hops.items()]


_current: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("hops", default=None)


def current() -> Trace | None:
    """The trace of the record being handled in this context, if any."""
    return _current.get()


def stamp(name: str, at_us: int | None = None) -> None:
    """Stamp hop `name` on the current trace (none: nothing is traced here)."""
    trace = _current.get()
    if trace is not None:
        trace.stamp(name, at_us)


def headers() -> Headers | None:
    """The current trace as headers (None when nothing is traced)."""
    trace = _current.get()
    return trace.headers() if trace is not None and trace.hops else None


class _Tracing:
    """The context manager of `tracing`: a class, not `contextlib.contextmanager`'s generator,
    since it wraps every record the sequencer and outbound handle and every webhook (0.7 µs to
    enter and leave here, against 1.6)."""

    __slots__ = ("_token", "_trace")

    def __init__(self, trace: Trace | None) -> None:
        self._trace = trace

    def __enter__(self) -> Trace | None:
        self._token = _current.set(self._trace)
        return self._trace

    def __exit__(self, *exc: object) -> None:
        _current.reset(self._token)


def tracing(trace: Trace | None) -> _Tracing:
    """`trace` is the current trace while the block runs."""
    return _Tracing(trace)
