"""Group commit for the ledger's statements: the calls waiting at the same moment go in one
round (one statement, one commit), and each caller still gets its own answer.

With no round in flight a call goes at once (a round of one); while a round is written, the
calls that arrive gather behind it and go in the next. Nothing waits for a timer, so at low
load a call costs what it did alone, and under load a round costs one round trip and one
commit for many calls. A key (a command) is at most once in a round: a second call for it
waits for the next round and sees what the first one did.

`write` takes a round and answers every future of it (`settle` helps it answer from one
result a call). A caller that goes away cancels its own future, not the round.
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
        key: Callable[[T], Hashable],
        max_size: int,
        name: str,
    ) -> None:
        self._write = write
        self._key = key
        self._name = name
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

    async def _rounds(self) -> None:
        """Write the waiting calls, a round at a time, until none waits."""
        round_: list[Waiting[T, R]] = []
        try:
            while self._waiting:
                round_, later, seen = [], [], set()
                for waiting in self._waiting:
                    key = self._key(waiting[0])
                    if key in seen or len(round_) >= self.max_size:
                        later.append(waiting)
                    else:
                        seen.add(key)
                        round_.append(waiting)
                self._waiting = later
                await self._write(round_)
            round_ = []
        finally:
            self._writer = None
            for _, done in round_:  # the writer was cancelled mid-round: so are its callers
                done.cancel()


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
