"""Per-hop timestamps: what is read from headers a producer upstream may have forged, and how
a trace is stamped and written."""

from __future__ import annotations

import asyncio

import pytest

from services.common.domain import hops


def test_only_known_hops_with_bounded_numbers_are_read() -> None:
    trace = hops.Trace.of(
        [
            ("hop.webhook_received", b"1700000000000000"),
            ("hop.order_in_kafka", "1700000000001000"),
            ("hop.made_up", b"5"),
            ("hop.sequencer_decided", b"-5"),
            ("hop.outbound_claimed", b"9" * 17),
            ("hop.provider_answered", b"12x"),
            ("hop.command_in_kafka", None),
            ("other", b"1"),
        ]
    )
    assert trace.hops == {"webhook_received": 1700000000000000, "order_in_kafka": 1700000000001000}
    assert hops.Trace.of(None).hops == {} and hops.Trace.of(
        {"hop.webhook_received": b"7"}
    ).hops == {"webhook_received": 7}


def test_a_hop_keeps_its_first_stamp_and_headers_round_trip() -> None:
    trace = hops.Trace({hops.WEBHOOK_RECEIVED: 10})
    trace.stamp(hops.WEBHOOK_RECEIVED, 99)
    trace.stamp(hops.ORDER_IN_KAFKA, 20)
    assert trace.headers() == [("hop.webhook_received", b"10"), ("hop.order_in_kafka", b"20")]
    assert hops.Trace.of(trace.headers()).hops == trace.hops


def test_stamps_go_to_the_current_trace_of_each_task_and_nowhere_without_one() -> None:
    hops.stamp(hops.SEQUENCER_DECIDED)  # nothing traced: no effect, no error
    assert hops.headers() is None

    async def handle(start: int) -> list[tuple[str, str | bytes | None]] | None:
        with hops.tracing(hops.Trace({hops.WEBHOOK_RECEIVED: start})):
            await asyncio.sleep(0)  # the other task runs meanwhile
            hops.stamp(hops.SEQUENCER_DECIDED, start + 1)
            return hops.headers()

    async def both() -> list[list[tuple[str, str | bytes | None]] | None]:
        return list(await asyncio.gather(handle(1), handle(100)))

    assert asyncio.run(both()) == [
        [("hop.webhook_received", b"1"), ("hop.sequencer_decided", b"2")],
        [("hop.webhook_received", b"100"), ("hop.sequencer_decided", b"101")],
    ]
    assert hops.current() is None


def test_tracing_gives_back_the_outer_trace_when_its_block_raises() -> None:
    outer = hops.Trace({hops.WEBHOOK_RECEIVED: 1})
    with hops.tracing(outer) as entered:
        assert entered is outer and hops.current() is outer
        seen: list[hops.Trace | None] = []

        def fails() -> None:
            with hops.tracing(None):
                seen.append(hops.current())
                raise ValueError("a record that fails")

        with pytest.raises(ValueError, match="a record that fails"):
            fails()
        assert seen == [None]
        assert hops.current() is outer  # the next record is not traced as the failed one
    assert hops.current() is None
