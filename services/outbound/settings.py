"""Settings of the outbound service: providers, pacing, and the safety list it enforces."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from services.common.phones import parse_phone_list, parse_regions
from services.common.settings import CommonSettings, LinkSigningSettings


def _present(value: str | SecretStr | None) -> bool:
    """A credential counts only when it is non-blank (`SENDGRID_API_KEY=` in .env is unset)."""
    if value is None:
        return False
    raw = value.get_secret_value() if isinstance(value, SecretStr) else value
    return bool(raw.strip())


class OutboundSettings(CommonSettings, LinkSigningSettings):
    # SMS bound to its recipient (DESIGN §6 4a) --------------------------------------------
    #: E.164 numbers that may receive SMS (exact after normalisation); empty: no SMS at all.
    lead_phone_whitelist: str = ""
    #: Regions (ISO 3166 alpha-2) whose numbers may receive SMS.
    sms_allowed_regions: str = "US,CA"

    # providers -------------------------------------------------------------------------------
    sendgrid_api_key: SecretStr | None = None
    sendgrid_from_email: str = "noreply@example.com"
    sendgrid_from_name: str | None = None
    sendgrid_api_base_url: str = "https://api.sendgrid.com"
    #: How an ambiguous SendGrid send (timeout after the request left) is reconciled:
    #: "activity" asks the Email Activity API (paid add-on) for the message by its
    #: custom_args command_id; "none" marks it `unknown` for an operator.
    sendgrid_reconcile: Literal["none", "activity"] = "none"
    #: Email Activity lags the send; "not found" is trusted only this long after the attempt.
    sendgrid_activity_settle_seconds: float = Field(default=120.0, ge=0)
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_phone_number: str | None = None
    twilio_messaging_service_sid: str | None = None
    twilio_api_base_url: str = "https://api.twilio.com"
    #: Delivery status callbacks (ingest's `/webhooks/twilio/status`); empty disables.
    twilio_status_callback_url: str | None = "http://localhost:3000/webhooks/twilio/status"
    #: Upper bound of an SMS's ValidityPeriod (also never past the end of the send window).
    sms_validity_max_seconds: int = Field(default=3600, ge=1, le=36000)
    #: Ingest's public unsubscribe URL (RFC 8058 one-click) put in List-Unsubscribe and the
    #: footer: `<base>/<signed token>` (LINK_SIGNING_KEYS).
    unsubscribe_base_url: str = "http://localhost:3000/u"
    provider_timeout_seconds: float = Field(default=10.0, gt=0)

    # pacing and retries ----------------------------------------------------------------------
    twilio_rate_per_second: float = Field(default=1.0, gt=0)
    twilio_rate_burst: int = Field(default=1, ge=1)
    sendgrid_rate_per_second: float = Field(default=50.0, gt=0)
    sendgrid_rate_burst: int = Field(default=50, ge=1)
    #: At most this many messages per contact and channel per window, across the locations of
    #: one Shopmonkey company (0 = none).
    frequency_cap_email: int = Field(default=1, ge=0)
    frequency_cap_sms: int = Field(default=1, ge=0)
    frequency_window_hours: float = Field(default=24.0, gt=0)
    #: One campaign's messages a day per customer (the estimate nurture plan counts as one):
    #: a later campaign waits for tomorrow. Off only for a demo whose customers share contacts.
    campaign_cap: bool = True
    retry_base_seconds: float = Field(default=0.5, gt=0)
    retry_max_seconds: float = Field(default=60.0, gt=0)

    # ledger ----------------------------------------------------------------------------------
    #: A 'claimed' row whose heartbeat is older than this was left by a dead process.
    claim_stale_seconds: float = Field(default=60.0, gt=0)
    #: How often the sweeper looks for stale claims (also once at start).
    sweep_interval_seconds: float = Field(default=30.0, gt=0)
    db_pool_size: int = Field(default=10, ge=1, le=100)

    # consumer and process --------------------------------------------------------------------
    outbound_group_id: str = Field(default="outbound", min_length=1)
    outbound_batch_size: int = Field(default=200, ge=1, le=10000)
    #: Commands of different tenants handled at the same time (one tenant stays in order).
    outbound_concurrency: int = Field(default=32, ge=1, le=1000)
    outbound_host: str = "0.0.0.0"
    outbound_port: int = Field(default=3003, ge=1, le=65535)
    #: Record-only commands (replays) go through the gate and the ledger and are recorded,
    #: never sent. True lets a record-only command the gate allows reach the provider (a
    #: command_id the ledger already holds is still never sent again).
    outbound_replay_send: bool = False

    @field_validator("lead_phone_whitelist")
    @classmethod
    def _phones(cls, value: str) -> str:
        parse_phone_list(value)  # ValueError names the entry
        return value

    @field_validator("sms_allowed_regions")
    @classmethod
    def _regions(cls, value: str) -> str:
        parse_regions(value)
        return value

    @property
    def phone_whitelist(self) -> frozenset[str]:
        return parse_phone_list(self.lead_phone_whitelist)

    @property
    def sms_regions(self) -> frozenset[str]:
        return parse_regions(self.sms_allowed_regions)

    @model_validator(mode="after")
    def _stale_after_timeout(self) -> Self:
        # The owner heartbeats before every provider attempt; a claim may look stale only
        # after a request could not possibly still be in flight.
        if self.claim_stale_seconds <= 2 * self.provider_timeout_seconds:
            raise ValueError(
                "CLAIM_STALE_SECONDS must exceed twice PROVIDER_TIMEOUT_SECONDS "
                f"({self.claim_stale_seconds} <= 2 x {self.provider_timeout_seconds})"
            )
        return self

    @property
    def email_configured(self) -> bool:
        return _present(self.sendgrid_api_key)

    @property
    def sms_configured(self) -> bool:
        return (
            _present(self.twilio_account_sid)
            and _present(self.twilio_auth_token)
            and (_present(self.twilio_phone_number) or _present(self.twilio_messaging_service_sid))
        )

    @property
    def status_callback(self) -> str | None:
        url = self.twilio_status_callback_url
        return url if _present(url) else None
