"""Settings of the ingest service (webhooks, website leads), the poller and the backfill."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from services.common.settings import (
    CommonSettings,
    IdSecretSettings,
    LinkSigningSettings,
    SecretsEncryptionSettings,
    ShopmonkeySettings,
)


class IngestSettings(
    CommonSettings,
    ShopmonkeySettings,
    IdSecretSettings,
    LinkSigningSettings,
    SecretsEncryptionSettings,
):
    #: The public listener: only what outside parties call (webhooks, forms, the chat
    #: service's lead API, unsubscribe links, health).
    webhook_port: int = Field(default=3000, ge=1, le=65535)
    webhook_host: str = "0.0.0.0"
    #: The operators' listener (dashboard, its API, /metrics): loopback unless told otherwise.
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=3090, ge=1, le=65535)
    #: The admin listener is reached over HTTPS (a TLS proxy in front): cookies are Secure.
    admin_tls: bool = False
    #: How long an operator's sign-in lasts.
    admin_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)
    #: Failed sign-ins allowed per account, and per client address, within the window.
    sign_in_max_failures: int = Field(default=5, ge=1, le=1000)
    sign_in_max_failures_per_address: int = Field(default=20, ge=1, le=10000)
    sign_in_window_seconds: float = Field(default=900.0, gt=0)
    #: What an unsubscribe link stops: the location's Shopmonkey company (its locations are one
    #: business with one customer list) or every location of the brand (this deployment).
    unsubscribe_scope: Literal["company", "brand"] = "company"
    poll_interval_seconds: float = Field(default=30.0, gt=0)
    poll_overlap_seconds: float = Field(default=120.0, ge=0)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    #: Health/metrics port of the poller process (`leadctl poller`).
    poller_port: int = Field(default=3004, ge=1, le=65535)
    #: Standard Webhooks timestamp tolerance (the reference library uses ±5 minutes).
    webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    #: A webhook waits this long for Kafka's acknowledgement before answering 503.
    kafka_publish_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    #: Shopmonkey customers fetched for their email/phone are cached this long.
    customer_cache_seconds: float = Field(default=300.0, ge=0)
    #: A company the poller has never read starts this far back (history: `leadctl backfill`).
    poll_initial_lookback_seconds: float = Field(default=3600.0, ge=0)
    #: Shopmonkey companies polled at the same time (each with its own API key and rate limit).
    poll_concurrency: int = Field(default=8, ge=1, le=200)
    # provider webhooks and the lead API (signals) --------------------------------------------
    #: SendGrid Signed Event Webhook verification key (base64 body of the ECDSA public key, as
    #: `GET /v3/user/webhooks/event/settings/signed` returns it); unset → every event refused.
    sendgrid_webhook_public_key: str | None = None
    #: A signed SendGrid event batch older (or newer) than this is refused as stale.
    sendgrid_webhook_tolerance_seconds: int = Field(default=600, ge=1, le=86400)
    #: Twilio Auth Token (the key of X-Twilio-Signature); unset → every Twilio webhook refused.
    twilio_auth_token: SecretStr | None = None
    #: Public base URL Twilio calls (e.g. https://hooks.example.com) when a proxy changes the
    #: URL this process sees; the signature covers the URL exactly as Twilio called it.
    twilio_webhook_public_url: str | None = None
    #: The answer to an SMS "HELP" (TwiML <Message>).
    sms_help_text: str = "Reply STOP to unsubscribe. Msg&data rates may apply."
    # callers that fail authentication ---------------------------------------------------------
    #: Failed authentications a client address may have at once before it is answered 429...
    auth_failure_burst: int = Field(default=60, ge=1, le=100_000)
    #: ...and how many more it is allowed per minute after that.
    auth_failures_per_minute: float = Field(default=60.0, gt=0)
    #: Client addresses remembered at most (least recently failed forgotten first).
    auth_failure_clients: int = Field(default=10_000, ge=1, le=10_000_000)
    #: Proxies in front of ingest that append the client to X-Forwarded-For (0: none, the
    #: peer address is the client's; never more than really are, or clients choose their own).
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)

    @model_validator(mode="after")
    def _two_listeners(self) -> Self:
        if self.admin_port == self.webhook_port:
            raise ValueError(
                f"ADMIN_PORT must differ from WEBHOOK_PORT ({self.admin_port}): operator "
                "surfaces never share the public listener"
            )
        return self


class BackfillSettings(
    CommonSettings, ShopmonkeySettings, IdSecretSettings, SecretsEncryptionSettings
):
    """Settings of `leadctl backfill` (its Shopmonkey pacing and what counts as history)."""

    #: Backfilled orders created longer ago than this get a lead but no touch points.
    backfill_plan_max_age_days: float = Field(default=30.0, ge=0)
    #: Shopmonkey requests per minute a backfill makes (its limit is ~100/min per API key).
    backfill_requests_per_minute: float = Field(default=60.0, ge=0)
