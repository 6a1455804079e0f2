"""Settings of the ingest service (webhooks, website leads) and the poller."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import CommonSettings, ShopmonkeySettings


class IngestSettings(CommonSettings, ShopmonkeySettings):
    webhook_port: int = Field(default=3000, ge=1, le=65535)
    webhook_host: str = "0.0.0.0"
    poll_interval_seconds: float = Field(default=30.0, gt=0)
    poll_overlap_seconds: float = Field(default=120.0, ge=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
