"""Group commit for statements: the calls waiting at the same moment go in one
round (one statement, one commit), and each caller still gets its own answer.

With no round in flight a call goes at once (a round of one); while a round is written, the
calls that arrive gather behind it and go in the next. Nothing waits for a timer, so at low
load a call costs what it did alone, and under load a round costs one round trip and one
commit for many calls. A key (a command) is at most once in a round: a second call for it
waits for the next round and sees what the first one did (`key` None: no such limit, the
write merges what it must).

`write` takes a round and answers every future of it (`settle` helps it answer from one
result a call); if it raises, the calls it left unanswered get its exception (the callers'
retries and dead letters decide, as for any failure of theirs) and the rounds go on. A caller
that goes away cancels its own future, not the round; with `skip_abandoned`, a call whose
caller went away before its round is not written at all (a claim nobody would act on).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: A call of a round: what it asks, and the future its caller waits on.
Waiting = tuple[T, asyncio.Future[R]]


class Rounds(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[Waiting[T, R]]], Awaitable[None]],
        *,
        key: Callable[[T], Hashable] | None,
        max_size: int,
        name: str,
        skip_abandoned: bool = False,
    ) -> None:
        self._write = write
        self._key = key
        self._name = name
        self._skip_abandoned = skip_abandoned
        #: at most how many calls share a round
        self.max_size = max_size
        #: calls waiting for the next round, and the task writing the rounds
        self._waiting: list[Waiting[T, R]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._rounds(), name=self._name)
        return await done  # a caller that goes away cancels its future, not the round

    async def idle(self) -> None:
        """Wait until no round is being written or waits (its outcome is its callers')."""
        while self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer])

    async def _rounds(self) -> None:
        """Write the waiting calls, a round at a time, until none waits."""
        round_: list[Waiting[T, R]] = []
        try:
            while self._waiting:
                round_, later, seen = [], [], set()
                for waiting in self._waiting:
                    if self._skip_abandoned and waiting[1].done():
                        continue
                    key = None if self._key is None else self._key(waiting[0])
                    if len(round_) >= self.max_size or (key is not None and key in seen):
                        later.append(waiting)
                    else:
                        if key is not None:
                            seen.add(key)
                        round_.append(waiting)
                self._waiting = later
                if round_:
                    await self._written(round_)
        except BaseException:  # cancelled (a shutdown): so are its callers, and those waiting
            for _, done in [*round_, *self._waiting]:
                done.cancel()
            self._waiting = []
            raise
        finally:
            self._writer = None

    async def _written(self, round_: list[Waiting[T, R]]) -> None:
        try:
            await self._write(round_)
        except Exception as exc:  # a bug or a surprise: its calls fail, not the next rounds
            for _, done in round_:
                if not done.done():
                    done.set_exception(exc)


def settle(round_: Sequence[Waiting[T, R]], results: Sequence[R | BaseException]) -> None:
    """Answer each call of `round_` with its result (`asyncio.gather(...,
    return_exceptions=True)` of the calls one by one): its value, its exception, or its
    cancellation."""
    for (_, done), result in zip(round_, results, strict=True):
        if done.done():
            continue
        if isinstance(result, asyncio.CancelledError):
            done.cancel()
        elif isinstance(result, BaseException):
            done.set_exception(result)
        else:
            done.set_result(result)
