"""Group commit (`services.common.rounds`): calls waiting at the same moment share a
round, a key is at most once in a round, and each caller gets its own answer."""

from __future__ import annotations

import asyncio

import pytest

from services.common.rounds import Rounds, Waiting, settle


class Writer:
    """Answers each call with its item doubled; a round of more than one with 'fail' in it
    fails as a statement would, and its calls are answered one by one."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, round_: list[Waiting[str, str]]) -> None:
        self.rounds.append([item for item, _ in round_])
        await self.gate.wait()
        if len(round_) > 1 and "fail" not in self.rounds[-1]:
            for item, done in round_:
                if not done.done():
                    done.set_result(item * 2)
            return
        results = await asyncio.gather(*(self.one(i) for i, _ in round_), return_exceptions=True)
        settle(round_, results)

    async def one(self, item: str) -> str:
        if item == "fail":
            raise ValueError("refused")
        return item * 2


def rounds_of(writer: Writer, max_size: int = 64) -> Rounds[str, str]:
    return Rounds(writer.write, key=lambda item: item[:1], max_size=max_size, name="test")


async def test_a_lone_call_goes_at_once_and_the_next_ones_gather_behind_it() -> None:
    writer = Writer()
    rounds = rounds_of(writer)
    writer.gate.clear()
    first = asyncio.ensure_future(rounds.submit("a"))
    await asyncio.sleep(0.01)
    assert writer.rounds == [["a"]]  # alone, at once
    later = [asyncio.ensure_future(rounds.submit(x)) for x in ("b", "c", "d")]
    await asyncio.sleep(0.01)
    writer.gate.set()
    assert await first == "aa"
    assert await asyncio.gather(*later) == ["bb", "cc", "dd"]
    assert writer.rounds == [["a"], ["b", "c", "d"]]


async def test_a_key_is_once_in_a_round_and_a_round_holds_at_most_max_size() -> None:
    writer = Writer()
    rounds = rounds_of(writer, max_size=2)
    got = await asyncio.gather(*(rounds.submit(x) for x in ("a1", "a2", "b", "c")))
    assert got == ["a1a1", "a2a2", "bb", "cc"]
    assert writer.rounds == [["a1", "b"], ["a2", "c"]]


async def test_a_refused_call_fails_alone() -> None:
    writer = Writer()
    rounds = rounds_of(writer)
    got = await asyncio.gather(
        *(rounds.submit(x) for x in ("x", "fail", "y")), return_exceptions=True
    )
    assert got[0] == "xx" and got[2] == "yy"
    assert isinstance(got[1], ValueError)


async def test_a_caller_that_goes_away_leaves_the_round_and_the_others() -> None:
    writer = Writer()
    rounds = rounds_of(writer)
    writer.gate.clear()
    tasks = [asyncio.ensure_future(rounds.submit(x)) for x in ("a", "b", "c")]
    await asyncio.sleep(0.01)
    tasks[1].cancel()
    writer.gate.set()
    got = await asyncio.gather(*tasks, return_exceptions=True)
    assert got[0] == "aa" and got[2] == "cc"
    assert isinstance(got[1], asyncio.CancelledError)
    assert writer.rounds == [["a", "b", "c"]]


async def test_a_writer_cancelled_mid_round_cancels_its_callers_and_the_next_call_starts_anew() -> (
    None
):
    writer = Writer()
    rounds = rounds_of(writer)
    writer.gate.clear()
    task = asyncio.ensure_future(rounds.submit("a"))
    await asyncio.sleep(0.01)
    assert rounds._writer is not None
    rounds._writer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    writer.gate.set()
    assert await rounds.submit("b") == "bb"


async def test_a_write_that_raises_fails_its_calls_and_the_rounds_go_on() -> None:
    """A surprise in `write` (a row this code cannot read, a bug) fails the calls of its round
    with that exception, which the callers' retries and dead letters handle; it does not
    cancel them (a cancelled command would stop the consumer), and the calls that waited
    behind that round are written."""
    written: list[list[str]] = []
    gate = asyncio.Event()

    async def write(round_: list[Waiting[str, str]]) -> None:
        written.append([item for item, _ in round_])
        await gate.wait()
        if "boom" in written[-1]:
            raise LookupError("unreadable")
        settle(round_, [item * 2 for item, _ in round_])

    rounds: Rounds[str, str] = Rounds(write, key=lambda item: item, max_size=8, name="test")
    first = [asyncio.ensure_future(rounds.submit(x)) for x in ("boom", "a")]
    await asyncio.sleep(0.01)
    behind = asyncio.ensure_future(rounds.submit("b"))
    await asyncio.sleep(0.01)
    gate.set()
    got = await asyncio.gather(*first, return_exceptions=True)
    assert all(isinstance(g, LookupError) for g in got), got
    assert await behind == "bb"
    assert written == [["boom", "a"], ["b"]]


async def test_with_skip_abandoned_a_call_whose_caller_went_away_is_not_written() -> None:
    writer = Writer()
    rounds: Rounds[str, str] = Rounds(
        writer.write, key=lambda item: item, max_size=8, name="test", skip_abandoned=True
    )
    writer.gate.clear()
    first = asyncio.ensure_future(rounds.submit("a"))
    await asyncio.sleep(0.01)
    gone, kept = (asyncio.ensure_future(rounds.submit(x)) for x in ("gone", "kept"))
    await asyncio.sleep(0.01)
    gone.cancel()
    writer.gate.set()
    assert await first == "aa" and await kept == "keptkept"
    assert writer.rounds == [["a"], ["kept"]]


async def test_a_cancelled_writer_cancels_the_calls_waiting_behind_its_round() -> None:
    writer = Writer()
    rounds = rounds_of(writer)
    writer.gate.clear()
    in_round = asyncio.ensure_future(rounds.submit("a"))
    await asyncio.sleep(0.01)
    behind = asyncio.ensure_future(rounds.submit("b"))
    await asyncio.sleep(0.01)
    assert rounds._writer is not None
    rounds._writer.cancel()
    got = await asyncio.gather(in_round, behind, return_exceptions=True)
    assert all(isinstance(g, asyncio.CancelledError) for g in got)


async def test_without_a_key_equal_calls_share_a_round_and_idle_waits_for_the_writer() -> None:
    """`key=None`: the write merges what it must (customer visits), so nothing is deferred; and
    `idle()` returns once no round is written or waits (a store's close)."""
    writer = Writer()
    rounds: Rounds[str, str] = Rounds(writer.write, key=None, max_size=64, name="test")
    writer.gate.clear()
    calls = [asyncio.ensure_future(rounds.submit(x)) for x in ("a", "a", "ab")]
    await asyncio.sleep(0.01)
    idle = asyncio.ensure_future(rounds.idle())
    await asyncio.sleep(0.01)
    assert not idle.done()
    writer.gate.set()
    await idle
    assert all(c.done() for c in calls) and writer.rounds == [["a", "a", "ab"]]
    await rounds.idle()  # nothing in flight: at once
