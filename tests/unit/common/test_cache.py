"""The shared TTL cache: fresh, negative, stale-while-revalidate, single flight, bounded misses."""

from __future__ import annotations

import asyncio

import pytest

from services.common.cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_fresh_entries_expire_after_their_ttl_and_misses_after_theirs() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(ttl=30, negative_ttl=5, clock=clock)
    cache.put("a", 1)
    cache.put("b", None)
    assert cache.peek("a") == (1,)
    assert cache.peek("b") == (None,)
    assert cache.peek("c") is None
    clock.now += 6
    assert cache.peek("a") == (1,)
    assert cache.peek("b") is None
    clock.now += 25
    assert cache.peek("a") is None


def test_misses_are_bounded_and_never_push_out_known_values() -> None:
    cache: TtlCache[int, str] = TtlCache(ttl=30, negative_ttl=5, max_negative=100)
    cache.put(-1, "known")
    for key in range(10_000):
        cache.put(key, None)
    assert len(cache) == 101
    assert cache.peek(-1) == ("known",)
    assert cache.peek(9_999) == (None,)
    assert cache.peek(0) is None  # the oldest misses went first


async def test_concurrent_callers_of_one_key_share_one_load() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=30)
    loads = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return 7

    waiting = [asyncio.create_task(cache.get("k", load)) for _ in range(20)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [7] * 20
    assert loads == 1


async def test_a_stale_value_is_served_while_one_background_load_refreshes_it() -> None:
    clock = Clock()
    cache: TtlCache[str, int] = TtlCache(
        ttl=30, max_stale=3600, refresh_errors=(OSError,), clock=clock
    )
    cache.put("k", 1)
    clock.now += 31
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        raise OSError("database down")

    assert await cache.get("k", failing) == 1
    await asyncio.sleep(0.01)
    assert calls == 1
    assert await cache.get("k", failing) == 1  # the failed refresh kept the stale entry

    async def fresh() -> int:
        return 2

    await asyncio.sleep(0.01)
    assert await cache.get("k", fresh) == 1  # still served stale while it reloads
    await asyncio.sleep(0.01)
    assert cache.peek("k") == (2,)


async def test_a_failed_foreground_load_propagates_and_caches_nothing() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=30)

    async def failing() -> int:
        raise OSError("down")

    with pytest.raises(OSError, match="down"):
        await cache.get("k", failing)
    assert cache.peek("k") is None
    assert len(cache) == 0


async def test_concurrent_callers_share_one_failed_load() -> None:
    """During an outage, N callers of one key cost one request: they share its error."""
    cache: TtlCache[str, int] = TtlCache(ttl=30)
    loads = 0
    gate = asyncio.Event()

    async def failing() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        raise OSError("Shopmonkey is down")

    waiting = [asyncio.create_task(cache.get("k", failing)) for _ in range(10)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert loads == 1
    assert all(isinstance(r, OSError) for r in results)


async def test_a_cancelled_loader_leaves_its_waiters_to_load_again() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl=30)
    started = asyncio.Event()

    async def slow() -> int:
        started.set()
        await asyncio.sleep(3600)
        return 1

    first = asyncio.create_task(cache.get("k", slow))
    await started.wait()

    async def quick() -> int:
        return 2

    second = asyncio.create_task(cache.get("k", quick))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 2


def test_a_full_cache_drops_expired_values_first_then_the_oldest() -> None:
    clock = Clock()
    cache: TtlCache[int, str] = TtlCache(ttl=30, max_known=100, clock=clock)
    for key in range(50):
        cache.put(key, "old")
    clock.now += 31  # the first 50 expired
    for key in range(50, 150):
        cache.put(key, "new")
    assert all(cache.peek(k) is None for k in range(50))
    fresh = [k for k in range(50, 150) if cache.peek(k) == ("new",)]
    assert len(fresh) >= 90 and 149 in fresh  # only the oldest tenth of the fresh ones went
