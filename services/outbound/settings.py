"""Settings of the outbound service: providers, pacing, and the safety list it enforces."""

from __future__ import annotations

from pydantic import Field, SecretStr

from services.common.settings import CommonSettings


class OutboundSettings(CommonSettings):
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str = "noreply@example.com"
    sendgrid_api_base_url: str = "https://api.sendgrid.com"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    outbound_port: int = Field(default=3003, ge=1, le=65535)
