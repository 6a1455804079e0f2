"""Pacing arithmetic: a token bucket per sender and the retry backoff. Pure (time passed in)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(slots=True)
class TokenBucket:
    """`rate` tokens per second, at most `burst` banked. `reserve(now)` takes one token and
    returns how long the caller must wait before using it (0 when one was available).

    Reservations queue up: ten callers at once on a 1/s bucket wait 0, 1, 2 … 9 s.
    """

    rate: float
    burst: int = 1
    _tokens: float = field(init=False)
    _at: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self._tokens = float(self.burst)

    def reserve(self, now: float) -> float:
        if self._at is not None:
            self._tokens = min(float(self.burst), self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds before retry number `attempt` (0-based): exponential with full jitter, capped;
    never sooner than the provider's Retry-After (plus up to 10 % jitter so a herd spreads)."""
    ceiling = min(cap, base * float(2 ** min(attempt, 30)))
    delay: float = ceiling * (0.5 + rand() / 2)  # "equal jitter": at least half the step
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after * (1.0 + rand() / 10))
    return delay
