"""Settings of the sequencer (Faust worker) and its lead-changes projection."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.common.settings import CommonSettings


class SequencerSettings(CommonSettings):
    #: Faust app id = Kafka consumer group of the sequencer (behind KAFKA_TOPIC_PREFIX): the
    #: replay tool rewinds this group and names it in `replay_runs.app_group`.
    sequencer_app_id: str = Field(default="lead-sequencer", pattern=r"^[A-Za-z0-9._-]+$")
    sequencer_host: str = "0.0.0.0"
    sequencer_port: int = Field(default=3002, ge=0, le=65535)
    #: Run the lead-changes → `leads` table projection inside `leadctl sequencer`.
    sequencer_projection: bool = True
    projection_group_id: str = Field(default="lead-projection", min_length=1)
    #: How long the broker may hold a fetch of the projection's consumer to gather lead
    #: changes (librdkafka fetch.wait.max.ms, with fetch.min.bytes 1 MiB): the `leads` table
    #: trails the sequencer by up to this much more, and each of its transactions writes more
    #: rows. 0: every change is fetched as soon as it is written.
    projection_fetch_wait_ms: int = Field(default=100, ge=0, le=5_000)
    #: A worker that stops heartbeating (killed) loses its partitions after this long.
    sequencer_session_timeout_seconds: float = Field(default=30.0, ge=6, le=300)
    #: How often the worker looks for a pending/running replay in `replay_runs`.
    replay_poll_seconds: float = Field(default=10.0, gt=0)
    sequencer_data_dir: Path = Path(".local/sequencer")
    sequencer_store: str = Field(default="rocksdb://", pattern=r"^(rocksdb|memory)://")
    touchpoint_tick_seconds: float = Field(default=10.0, gt=0)
    #: Timezone of a tenant that is not (yet) in the `tenants` table.
    sequencer_default_timezone: str = "America/New_York"
    #: RocksDB memory per table partition, MiB: block cache + write buffers (Faust's default
    #: is 2 GiB of block cache per partition database).
    sequencer_rocksdb_memory_mb: int = Field(default=8, ge=2, le=4096)
    #: Records an agent takes at once: one round of output and changelog acks per batch.
    #: Faust's stream pauses while a batch is processed (measured: bench/sequencer/README.md).
    sequencer_batch_size: int = Field(default=3000, ge=1, le=100_000)
    #: How long an agent waits to fill a batch before it processes what it has.
    sequencer_batch_ms: float = Field(default=20.0, gt=0, le=10_000)

    @property
    def app_id(self) -> str:
        """The Faust app id and consumer group: KAFKA_TOPIC_PREFIX + SEQUENCER_APP_ID."""
        return f"{self.kafka_topic_prefix}{self.sequencer_app_id}"

    @field_validator("sequencer_default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value
