"""An operator's stop and resume (contact signals from the dashboard): a stopped lead gets no
touch point and is due never; resumed, its sequence goes on; the pause survives the table's
codec."""

from __future__ import annotations

from datetime import timedelta

from schemas.events import SignalKind
from services.common.domain.send_windows import SendWindowPolicy
from services.sequencer.adapters.lead_codec import decode_lead, encode_lead
from services.sequencer.domain.effects import visible
from services.sequencer.domain.lifecycle import apply_contact, apply_order
from services.sequencer.domain.plan import DEFAULT_PLAN
from services.sequencer.domain.planner import evaluate, next_due
from tests.unit.sequencer.support import T0, order, signal

POLICY = SendWindowPolicy.for_location(timezone="America/New_York")


def test_a_stopped_lead_gets_nothing_until_resumed() -> None:
    lead = apply_order(None, order(at=T0))
    soon = T0 + timedelta(minutes=30)
    assert evaluate(lead, DEFAULT_PLAN, POLICY, soon).commands  # due when not stopped

    stopped = apply_contact(lead, signal(lead.lead_id, SignalKind.SEQUENCE_STOPPED, at=T0))
    assert evaluate(stopped, DEFAULT_PLAN, POLICY, soon).commands == ()
    assert next_due(stopped, DEFAULT_PLAN, POLICY) is None
    assert visible(stopped)[-1] is True  # the read model's sequence_stopped

    resumed = apply_contact(
        stopped, signal(lead.lead_id, SignalKind.SEQUENCE_RESUMED, at=T0 + timedelta(minutes=1))
    )
    assert not resumed.paused
    assert evaluate(resumed, DEFAULT_PLAN, POLICY, soon).commands


def test_the_pause_survives_the_codec_and_old_records_read_as_not_paused() -> None:
    lead = apply_order(None, order(at=T0))
    stopped = apply_contact(lead, signal(lead.lead_id, SignalKind.SEQUENCE_STOPPED, at=T0))
    assert decode_lead(encode_lead(stopped)).paused is True
    assert decode_lead(encode_lead(lead)).paused is False


def test_stop_and_resume_end_the_same_whatever_order_they_arrive_in() -> None:
    """The later signal wins by its time, not by when it arrived (a replay, a re-delivery); a
    stop and a resume of the same instant: stopped (fail closed)."""
    lead = apply_order(None, order(at=T0))
    stop = signal(lead.lead_id, SignalKind.SEQUENCE_STOPPED, at=T0)
    resume_later = signal(lead.lead_id, SignalKind.SEQUENCE_RESUMED, at=T0 + timedelta(minutes=1))
    resume_same = signal(lead.lead_id, SignalKind.SEQUENCE_RESUMED, at=T0)
    for first, second, paused in (
        (stop, resume_later, False),
        (resume_later, stop, False),
        (stop, resume_same, True),
        (resume_same, stop, True),
    ):
        ended = apply_contact(apply_contact(lead, first), second)
        assert ended.paused is paused, (first.kind, second.kind)
        assert decode_lead(encode_lead(ended)).pause == ended.pause


def test_a_pause_written_before_its_order_key_reads_as_a_stop() -> None:
    import orjson

    lead = apply_order(None, order(at=T0))
    row = orjson.loads(encode_lead(lead))
    row += [None] * (27 - len(row)) + [True]  # replay_id, then the old bare flag
    old = decode_lead(orjson.dumps(row))
    assert old.paused
    resumed = apply_contact(old, signal(lead.lead_id, SignalKind.SEQUENCE_RESUMED, at=T0))
    assert not resumed.paused
