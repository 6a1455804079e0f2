"""Faust's aiokafka transport, with a seek back to committed offsets that also seeks to 0.

Faust drops records it fetched but could not hand to a stream (flow stopped by a rebalance,
a partition paused meanwhile, the generation changed) and relies on `perform_seek` ("seek
stream partitions to committed offsets", also run when recovery ends) to read them again.
aiokafka's `seek_to_committed` seeks only where the committed offset is > 0: where the group
committed offset 0 (`leadctl replay` rewinding to the start of a partition) or nothing yet
(a new group), the position stayed past the dropped records and they were never processed
nor committed. Seen as a replay that never finished: the group's offset stuck at 0 on a
partition whose only record was dropped (tests/integration/sequencer, ~1 run in 5).

Here those partitions go back to where the group starts reading them: offset 0, or the reset
position (`consumer_auto_offset_reset`) when nothing is committed. Changelog partitions are
left alone: the group commits nothing for them, recovery and standbys position them itself.

`KeepCurrentFlowControl` closes the other way Faust loses a fetched record (faust-streaming
issue #596, open): when recovery ends, Faust resumes the stream partitions and seeks them back
to the committed offsets, and only then resumes `app.flow_control`, whose `resume()` empties
every agent's queue. A record fetched between the two (the fetcher runs during recovery, for
the changelogs) was put in a queue and thrown away; the consumer's position was already past
it, and nothing read it again until the next rebalance. Seen as a replay that never finished
(the group's offset stuck at 0 on a partition whose only record was thrown away) and as a
replayed record never judged while the record after it was, and committed past it (Faust does
not see a gap after a committed offset 0). Resuming now keeps the records fetched in the
current generation of the group; only those of an earlier generation (partitions that may be
gone) are dropped, as Faust does. A record kept and also read again after the seek is handled
twice: at least once, and handling a record again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from mode.utils.queues import FlowControlEvent


async def seek_back_to_committed(
    consumer: AIOKafkaConsumer, *, reset: str, skip_topics: Collection[str] = ()
) -> dict[TopicPartition, int | None]:
    """`consumer.seek_to_committed()`, plus the seeks it leaves out: to 0 where 0 is
    committed, to the `reset` position ('earliest' or 'latest') where nothing is, except on
    `skip_topics`. Returns each assigned partition's committed offset (None: none)."""
    committed: dict[TopicPartition, int | None] = dict(await consumer.seek_to_committed())
    unset = []
    for tp, offset in committed.items():
        if tp.topic in skip_topics:
            continue
        if offset == 0:
            consumer.seek(tp, 0)
        elif offset is None:
            unset.append(tp)
    if unset:
        if reset == "latest":
            await consumer.seek_to_end(*unset)
        else:
            await consumer.seek_to_beginning(*unset)
    return committed


class KeepCurrentFlowControl(FlowControlEvent):
    """`app.flow_control` whose `resume()` keeps the records of the current generation in the
    agents' queues (module docstring); `clear()`, called when partitions are revoked, still
    empties them."""

    def __init__(self, generation: Callable[[], int | None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._generation = generation

    def resume(self) -> None:
        self._suspend.clear()
        self._resume.set()
        generation = self._generation()
        for queue in list(self._queues):
            items = queue._queue  # type: ignore[attr-defined]  # asyncio.Queue's deque
            kept = [item for item in items if _generation_of(item) == generation]
            items.clear()
            items.extend(kept)


def _generation_of(item: Any) -> int | None:
    """The generation an agent queue's event was fetched in (None: not a fetched record)."""
    message = getattr(item, "message", None)
    return getattr(message, "generation_id", None) if message is not None else None


def keep_current_records_on_resume(app: Any) -> None:
    """Install `KeepCurrentFlowControl` as `app.flow_control`, before any queue exists (no
    loop bound: its events take the running loop when waited on, as the app's own would)."""
    app.flow_control = KeepCurrentFlowControl(lambda: app.consumer_generation_id)


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(self._seek_back)
        return result

    async def _seek_back(self) -> dict[TopicPartition, int | None]:
        app: Any = self.consumer.app
        return await seek_back_to_committed(
            self._ensure_consumer(),
            reset=str(app.conf.consumer_auto_offset_reset),
            skip_topics=app.tables.changelog_topics,
        )


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """`kafka://` with the consumer above (`app.transport = Transport(...)`)."""

    Consumer = Consumer
