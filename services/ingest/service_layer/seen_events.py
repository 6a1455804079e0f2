"""Event ids this process already got acknowledged by Kafka (bounded LRU).

A redelivered webhook, or the poller's overlap re-reading a record, is answered from here
without producing the record again. Losing it (restart) only means a harmless duplicate that
consumers drop by `event_id`. `begin`/`end` also make concurrent deliveries of the same event
(a retry racing a slow first attempt) wait for the first instead of producing it twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict

_MISSING = object()


class SeenEvents:
    def __init__(self, size: int = 50_000) -> None:
        self._size = size
        self._entries: OrderedDict[str, uuid.UUID | None] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[None] | None] = {}

    def __contains__(self, event_id: str) -> bool:
        return event_id in self._entries

    def lead_of(self, event_id: str) -> tuple[bool, uuid.UUID | None]:
        """(seen, lead_id): the lead id answered when the event was first acknowledged."""
        value = self._entries.get(event_id, _MISSING)
        if value is _MISSING:
            return False, None
        self._entries.move_to_end(event_id)
        assert value is None or isinstance(value, uuid.UUID)
        return True, value

    def add(self, event_id: str, lead_id: uuid.UUID | None) -> None:
        self._entries[event_id] = lead_id
        self._entries.move_to_end(event_id)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def try_begin(self, event_id: str) -> tuple[bool, uuid.UUID | None] | None:
        """`begin` without waiting: None when another task is producing `event_id` (then
        await `begin`), else what `begin` would answer (the common case, no suspension)."""
        if event_id in self._inflight:
            return None
        seen, lead_id = self.lead_of(event_id)
        if not seen:
            self._inflight[event_id] = None
        return seen, lead_id

    async def begin(self, event_id: str) -> tuple[bool, uuid.UUID | None]:
        """Wait until no other task is producing `event_id`; then either (True, lead) when it
        is already acknowledged, or (False, None) and this task owns it until `end`."""
        while (begun := self.try_begin(event_id)) is None:
            pending = self._inflight[event_id]
            if pending is None:  # the first waiter makes the future the owner's `end` settles
                pending = self._inflight[event_id] = asyncio.get_running_loop().create_future()
            await asyncio.wait({pending})
        return begun

    def end(self, event_id: str) -> None:
        """Release `event_id` (produced or failed); waiters re-check."""
        pending = self._inflight.pop(event_id, None)
        if pending is not None and not pending.done():
            pending.set_result(None)
