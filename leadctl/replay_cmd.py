"""Only for `leadctl/backfill_cmd.py`, which still imports `parse_time` from here: the time
parser lives in `leadctl.times`. Delete once backfill imports it from there."""

from leadctl.times import parse_time

__all__ = ["parse_time"]
