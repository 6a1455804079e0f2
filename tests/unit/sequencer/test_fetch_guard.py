"""The guard against records handed over past a gap (faust_transport.py): a record ahead of the
next one expected sends its partition back to where its next record is, once; a gap still
there after that (records deleted by retention) is let through as Faust would. Where the next
record is depends on how the partition got there: one after the last record handed over, or
the very offset a seek went to."""

from __future__ import annotations

from services.sequencer.adapters.faust_transport import FetchGuard

TP = ("leads.order-events.v1", 3)


def test_after_a_record_the_next_one_goes_through_and_a_later_one_sends_it_back() -> None:
    guard = FetchGuard()
    assert guard.seek_to(TP, 11, read=10) is None  # the next one
    assert guard.seek_to(TP, 24, read=11) == 12  # 12..23 were never handed over
    assert guard.seek_to(("other", 3), 24, read=11) == 12  # partitions are apart


def test_after_a_seek_the_record_sought_is_the_next_one() -> None:
    """Recovery sought back to the committed offset 8: the next record is 8 itself. A fetch
    from before the seek, handed over after it, brings 9 (or 24): 8 must come first."""
    guard = FetchGuard()
    guard.moved(TP, 8)
    assert guard.seek_to(TP, 9, read=8) == 8
    guard = FetchGuard()
    guard.moved(TP, 8)
    assert guard.seek_to(TP, 24, read=8) == 8
    assert guard.seek_to(TP, 8, read=8) is None  # 8 came again: handed over
    assert guard.seek_to(TP, 9, read=8) is None  # and from then on one after the other


def test_records_older_than_the_next_go_through_for_faust_to_drop() -> None:
    guard = FetchGuard()
    guard.moved(TP, 50)
    assert guard.seek_to(TP, 40, read=50) is None  # stale and older: Faust drops it
    assert guard.seek_to(TP, 60, read=50) == 50  # 50 is still the next one


def test_a_seek_to_the_log_start_or_the_end_leaves_the_next_offset_unknown() -> None:
    guard = FetchGuard()
    guard.moved(TP, None)
    assert guard.seek_to(TP, 500, read=None) is None


def test_a_gap_still_there_after_one_seek_back_is_real_and_goes_through() -> None:
    guard = FetchGuard()
    assert guard.seek_to(TP, 500, read=99) == 100
    assert guard.seek_to(TP, 500, read=100) is None  # retention deleted 100..499
    assert guard.seek_to(TP, 501, read=500) is None  # and on from there
    assert guard.seek_to(TP, 900, read=600) == 601  # a new position: a new gap is checked
