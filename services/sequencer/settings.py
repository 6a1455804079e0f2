"""Settings of the sequencer (Faust worker) and its lead-changes projection."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class SequencerSettings(CommonSettings):
    sequencer_port: int = Field(default=3002, ge=1, le=65535)
    sequencer_data_dir: Path = Path(".local/sequencer")
    sequencer_store: str = "rocksdb://"
    touchpoint_tick_seconds: float = Field(default=10.0, gt=0)
