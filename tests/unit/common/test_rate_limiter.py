"""The shared rate limiter: evenly spaced acquisitions over the token bucket."""

from __future__ import annotations

from services.common.rate_limiter import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


async def test_per_minute_spaces_acquisitions_evenly() -> None:
    t = FakeTime()
    limiter = RateLimiter.per_minute(120, clock=t.clock, sleep=t.sleep)
    for _ in range(4):
        await limiter.acquire()
    assert t.slept == [0.5, 1.0, 1.5]  # callers at one instant queue up half a second apart


async def test_zero_per_minute_never_waits() -> None:
    t = FakeTime()
    limiter = RateLimiter.per_minute(0, clock=t.clock, sleep=t.sleep)
    for _ in range(100):
        await limiter.acquire()
    assert t.slept == []
