"""The guard against records handed over past a gap (faust_transport.py): a record ahead of the
next one expected sends its partition back to where it was expected to go on, once; a gap
that is still there after that (records deleted by retention) is let through as Faust would."""

from __future__ import annotations

from services.sequencer.adapters.faust_transport import FetchGuard

TP = ("leads.order-events.v1", 3)


def test_the_next_record_and_the_first_one_after_a_seek_go_through() -> None:
    guard = FetchGuard()
    assert guard.seek_to(TP, 11, read=10) is None  # the next one
    assert guard.seek_to(TP, 10, read=10) is None  # the one a seek to 10 comes back with
    assert guard.seek_to(TP, 0, read=None) is None  # nothing read yet: wherever it starts


def test_a_record_past_a_gap_sends_the_partition_back_to_where_it_was_expected() -> None:
    """A fetch from before a seek back to offset 8, handed over after it, brings offset 24:
    the partition is read again from 8 (records 9..23 were never processed)."""
    guard = FetchGuard()
    assert guard.seek_to(TP, 24, read=8) == 8
    assert guard.seek_to(("other", 3), 24, read=8) == 8  # partitions are apart


def test_a_gap_still_there_after_one_seek_back_is_real_and_goes_through() -> None:
    guard = FetchGuard()
    assert guard.seek_to(TP, 500, read=100) == 100
    assert guard.seek_to(TP, 500, read=100) is None  # retention deleted 101..499
    assert guard.seek_to(TP, 900, read=600) == 600  # a new position: a new gap is checked
