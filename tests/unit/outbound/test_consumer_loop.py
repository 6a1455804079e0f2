"""The consume loop without a broker: DLQ, per-tenant order, offsets stored only behind
finished work, staying alive while blocked. Plus the pacing arithmetic."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from schemas.base import Channel
from schemas.events import OutcomeStatus, TouchPointCommand, TouchPointOutcome
from services.common.domain.pacing import TokenBucket, backoff_delay
from services.common.errors import DataRejected
from services.outbound.entrypoints.consumer import CommandConsumer
from services.outbound.errors import UnsendableCommand
from tests.unit.outbound.support import command


@dataclass
class Msg:
    _value: bytes | None
    _key: bytes
    _partition: int
    _offset: int
    _topic: str = "t.leads.touchpoint-commands.v1"

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return self._key

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def topic(self) -> str:
        return self._topic

    def error(self) -> None:
        return None

    def headers(self) -> None:
        return None


@dataclass
class FakeRaw:
    paused: int = 0
    resumed: int = 0

    def assignment(self) -> list[Any]:
        return ["tp"]

    def pause(self, _: Any) -> None:
        self.paused += 1

    def resume(self, _: Any) -> None:
        self.resumed += 1


@dataclass
class FakeKafka:
    stored: list[tuple[int, int]] = field(default_factory=list)
    polled: int = 0
    raw: FakeRaw = field(default_factory=FakeRaw)
    extra: list[Msg] = field(default_factory=list)

    def poll_batch(self, max_records: int = 100, timeout: float = 0.5) -> list[Msg]:
        self.polled += 1
        out, self.extra = self.extra, []
        return out

    def store(self, msg: Msg) -> None:
        self.stored.append((msg.partition(), msg.offset()))


@dataclass
class FakeDLQ:
    letters: list[Any] = field(default_factory=list)

    async def publish_async(self, letter: Any) -> None:
        self.letters.append(letter)


class RecordingHandler:
    def __init__(
        self,
        delays: dict[uuid.UUID, float] | None = None,
        fail: set[uuid.UUID] | None = None,
        error: Exception | None = None,
    ):
        self.delays = delays or {}
        self.fail = fail or set()
        self.error = error or RuntimeError("bug")
        self.fail_times: int | None = None  # None: always
        self.events: list[tuple[str, uuid.UUID]] = []

    async def handle(self, cmd: TouchPointCommand) -> TouchPointOutcome:
        self.events.append(("start", cmd.command_id))
        await asyncio.sleep(self.delays.get(cmd.command_id, 0))
        if cmd.command_id in self.fail and (self.fail_times is None or self.fail_times > 0):
            if self.fail_times is not None:
                self.fail_times -= 1
            raise self.error
        self.events.append(("end", cmd.command_id))
        return TouchPointOutcome(
            command_id=cmd.command_id,
            tenant_id=cmd.tenant_id,
            lead_id=cmd.lead_id,
            step_index=cmd.step_index,
            channel=Channel.EMAIL,
            status=OutcomeStatus.SENT,
            reason="accepted",
            decided_at=cmd.issued_at,
        )


def msg_of(cmd: TouchPointCommand | None, partition: int, offset: int, key: str = "k") -> Msg:
    return Msg(cmd.to_bytes() if cmd else b"{not json", key.encode(), partition, offset)


def consumer(handler: Any, kafka: FakeKafka, dlq: FakeDLQ, **kw: Any) -> CommandConsumer:
    return CommandConsumer(consumer=kafka, handler=handler, dead_letters=dlq, **kw)  # type: ignore[arg-type]


async def test_bad_records_are_dead_lettered_and_offsets_stored() -> None:
    kafka, dlq, handler = FakeKafka(), FakeDLQ(), RecordingHandler()
    a, b = command(), command()
    msgs = [msg_of(a, 0, 10), msg_of(None, 0, 11), msg_of(b, 0, 12)]
    await consumer(handler, kafka, dlq).process(msgs, asyncio.Event())  # type: ignore[arg-type]
    assert len(dlq.letters) == 1 and "TouchPointCommand" in dlq.letters[0].reason
    assert [e for e in handler.events if e[0] == "end"] == [
        ("end", a.command_id),
        ("end", b.command_id),
    ]
    assert kafka.stored == [(0, 12)]


class Slept(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_a_handler_bug_is_tried_a_few_times_then_parked_and_the_stream_moves_on() -> None:
    kafka, dlq, slept = FakeKafka(), FakeDLQ(), Slept()
    bad, good = command(), command()
    handler = RecordingHandler(fail={bad.command_id})
    await consumer(handler, kafka, dlq, sleep=slept).process(
        [msg_of(bad, 1, 0), msg_of(good, 1, 1)],
        asyncio.Event(),  # type: ignore[list-item]
    )
    [letter] = dlq.letters
    assert letter.reason.startswith("unknown: RuntimeError: bug")
    assert handler.events.count(("start", bad.command_id)) == 3 and len(slept) == 2
    assert kafka.stored == [(1, 1)]


@pytest.mark.parametrize(
    "error",
    [
        UnsendableCommand("template_error:sms/t.txt.j2: 'lead' is undefined"),
        DataRejected("PostgreSQL refused: DataError: value too long"),
    ],
)
async def test_a_poison_command_goes_to_the_dlq_after_one_try(error: Exception) -> None:
    kafka, dlq, slept = FakeKafka(), FakeDLQ(), Slept()
    bad, good = command(), command()
    handler = RecordingHandler(fail={bad.command_id}, error=error)
    await consumer(handler, kafka, dlq, sleep=slept).process(
        [msg_of(bad, 1, 0), msg_of(good, 1, 1)],
        asyncio.Event(),  # type: ignore[list-item]
    )
    [letter] = dlq.letters
    assert letter.reason == f"poison: {type(error).__name__}: {error}"
    assert handler.events.count(("start", bad.command_id)) == 1 and slept == []
    assert ("end", good.command_id) in handler.events and kafka.stored == [(1, 1)]


async def test_a_transient_failure_is_retried_with_backoff_never_dead_lettered() -> None:
    kafka, dlq, slept = FakeKafka(), FakeDLQ(), Slept()
    cmd = command()
    handler = RecordingHandler(
        fail={cmd.command_id}, error=ConnectionResetError("server closed the connection")
    )
    handler.fail_times = 8
    await consumer(handler, kafka, dlq, sleep=slept).process(
        [msg_of(cmd, 1, 0)],
        asyncio.Event(),  # type: ignore[list-item]
    )
    assert dlq.letters == []
    assert ("end", cmd.command_id) in handler.events and kafka.stored == [(1, 0)]
    assert len(slept) == 8 and slept[-1] > slept[0]


async def test_tenants_run_in_parallel_and_each_tenant_in_order() -> None:
    kafka, dlq = FakeKafka(), FakeDLQ()
    slow1, slow2, other = command(), command(), command()
    handler = RecordingHandler(delays={slow1.command_id: 0.2, slow2.command_id: 0.0})
    msgs = [msg_of(slow1, 0, 0, "A"), msg_of(slow2, 0, 1, "A"), msg_of(other, 1, 0, "B")]
    await consumer(handler, kafka, dlq).process(msgs, asyncio.Event())  # type: ignore[arg-type]
    order = [(kind, cid) for kind, cid in handler.events]
    # tenant B finished while tenant A's first command was still running …
    assert order.index(("end", other.command_id)) < order.index(("end", slow1.command_id))
    # … and tenant A's second command started only after its first ended
    assert order.index(("end", slow1.command_id)) < order.index(("start", slow2.command_id))
    assert sorted(kafka.stored) == [(0, 1), (1, 0)]


async def test_blocked_batch_keeps_polling_paused_and_stores_only_behind_finished_work() -> None:
    kafka, dlq = FakeKafka(), FakeDLQ()
    stuck, later_same_partition, other_partition = command(), command(), command()
    handler = RecordingHandler(delays={stuck.command_id: 60})
    fetched_meanwhile = msg_of(command(), 3, 0, "C")
    kafka.extra = [fetched_meanwhile]
    stop = asyncio.Event()
    loop = consumer(handler, kafka, dlq, keepalive_seconds=0.05, shutdown_grace_seconds=0.3)
    msgs = [
        msg_of(stuck, 0, 5, "A"),
        msg_of(later_same_partition, 0, 6, "B"),
        msg_of(other_partition, 1, 9, "D"),
    ]
    asyncio.get_running_loop().call_later(0.3, stop.set)
    extra = await loop.process(msgs, stop)  # type: ignore[arg-type]
    assert kafka.raw.paused >= 1 and kafka.raw.resumed == 1 and kafka.polled >= 1
    assert extra == [fetched_meanwhile]  # never dropped: handled next
    # offset 5 never finished (cancelled at shutdown): 6 must not be stored past it
    assert kafka.stored == [(1, 9)]


# pacing ---------------------------------------------------------------------------------------
def test_token_bucket_queues_reservations() -> None:
    bucket = TokenBucket(rate=1.0, burst=1)
    assert [bucket.reserve(0.0) for _ in range(3)] == [0.0, 1.0, 2.0]
    assert bucket.reserve(10.0) == 0.0  # refilled (up to the burst)
    burst = TokenBucket(rate=10.0, burst=5)
    waits = [burst.reserve(0.0) for _ in range(7)]
    assert waits[:5] == [0.0] * 5 and waits[5] == pytest.approx(0.1)


def test_backoff_grows_caps_and_honours_retry_after() -> None:
    high = lambda: 1.0  # noqa: E731
    low = lambda: 0.0  # noqa: E731
    assert backoff_delay(0, base=0.5, cap=60, rand=high) == 0.5
    assert backoff_delay(3, base=0.5, cap=60, rand=low) == 2.0
    assert backoff_delay(20, base=0.5, cap=60, rand=high) == 60
    assert backoff_delay(0, base=0.5, cap=60, retry_after=30, rand=low) == 30
    assert 30 <= backoff_delay(0, base=0.5, cap=60, retry_after=30) <= 33
