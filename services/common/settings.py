"""Settings shared by every service; each service subclasses `CommonSettings` in its own module.

Loaded once at start from the environment, `.env` and `.env.local` (the secrets `make run`
generates for a local run; both gitignored, the environment wins); a bad or missing value
raises `ConfigError` naming the variable, and secrets are `SecretStr` so they never reach a
log or a repr. The deployment secrets are mixins, each required by the services that use it:
a service without one refuses to start and names it.
"""

from __future__ import annotations

import uuid
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.base import MIN_ID_SECRET_BYTES, LeadIdKey
from services.common.domain.signed_links import (
    OPERATOR_SESSION,
    UNSUBSCRIBE,
    Signer,
    parse_signing_keys,
)
from services.common.errors import ConfigError
from services.common.kafka.connection import KafkaConnection, SaslMechanism, SecurityProtocol
from services.common.secret_box import SecretBox, parse_keys
from services.common.topics import Topics
from services.common.whitelist import parse_whitelist

LogLevel = Literal["debug", "info", "warning", "error", "critical"]
#: Read in this order, later files winning; real environment variables win over both.
ENV_FILES = (".env", ".env.local")


class CommonSettings(BaseSettings):
    """What every service needs: where Kafka and PostgreSQL are, logging, and the safety list."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILES, env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = Field(
        default="postgresql://postgres:postgres@localhost:5432/lead_orchestrator",
        description="PostgreSQL URL (tenants, read model, send ledger).",
    )
    kafka_bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    kafka_partitions: int = Field(default=12, ge=1, le=1000)
    kafka_topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prepended to every topic name (isolated environments, tests).",
    )
    #: Replicas of every topic the project creates (main, DLQ, Faust changelogs and internal
    #: topics); 1 for the local single broker, 3 on a production cluster.
    kafka_replication_factor: int = Field(default=1, ge=1, le=16)
    #: min.insync.replicas of those topics; None = min(2, KAFKA_REPLICATION_FACTOR).
    kafka_min_insync_replicas: int | None = Field(default=None, ge=1, le=16)
    # transport security, the same for every client (librdkafka, aiokafka/Faust, leadctl)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: Path | None = None
    kafka_ssl_certificate_location: Path | None = None
    kafka_ssl_key_location: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    log_level: LogLevel = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto = readable text on a terminal, JSON lines otherwise."
    )
    tenant_id: uuid.UUID | None = Field(
        default=None, description="Default tenant for the single-location seed endpoint."
    )
    lead_email_whitelist: str = Field(
        default="", description="Comma-separated recipient emails; empty = nothing is sent."
    )
    demo_mode: bool = False
    #: Tenants (configuration, secrets, API keys) are cached this long by every service; a
    #: changed location or rotated secret applies after it.
    tenant_cache_seconds: float = Field(default=30.0, ge=0)
    chat_base_url: str = Field(default="https://chat.tintworld.com", min_length=1)

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator(
        "kafka_min_insync_replicas",
        "kafka_sasl_username",
        "kafka_sasl_password",
        "kafka_ssl_ca_location",
        "kafka_ssl_certificate_location",
        "kafka_ssl_key_location",
        "kafka_ssl_key_password",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        """`KAFKA_SASL_USERNAME=` in .env means unset, as for every optional setting."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator(
        "kafka_ssl_ca_location", "kafka_ssl_certificate_location", "kafka_ssl_key_location"
    )
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _kafka_consistent(self) -> Self:
        """Settings that are valid alone but not together fail here, naming the variable."""
        rf, isr = self.kafka_replication_factor, self.kafka_min_insync_replicas
        if isr is not None and isr > rf:
            raise ValueError(
                f"KAFKA_MIN_INSYNC_REPLICAS={isr} exceeds KAFKA_REPLICATION_FACTOR={rf} "
                "(no write could ever be acknowledged)"
            )
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            password = self.kafka_sasl_password
            if not self.kafka_sasl_username:
                raise ValueError(f"KAFKA_SASL_USERNAME is required with {protocol}")
            if password is None or not password.get_secret_value():
                raise ValueError(f"KAFKA_SASL_PASSWORD is required with {protocol}")
        if (self.kafka_ssl_certificate_location is None) != (self.kafka_ssl_key_location is None):
            raise ValueError(
                "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together"
            )
        return self

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("chat_base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def whitelist(self) -> frozenset[str]:
        return parse_whitelist(self.lead_email_whitelist)

    @property
    def topics(self) -> Topics:
        return Topics(self.kafka_topic_prefix)

    @property
    def kafka_min_insync(self) -> int:
        """min.insync.replicas of the project's topics (KAFKA_MIN_INSYNC_REPLICAS or its
        default, min(2, KAFKA_REPLICATION_FACTOR))."""
        if self.kafka_min_insync_replicas is not None:
            return self.kafka_min_insync_replicas
        return min(2, self.kafka_replication_factor)

    @cached_property
    def kafka(self) -> KafkaConnection:
        """How every Kafka client of this process reaches the cluster."""

        def path(value: Path | None) -> str | None:
            return None if value is None else str(value)

        return KafkaConnection(
            bootstrap=self.kafka_bootstrap_servers,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=self.kafka_sasl_password,
            ssl_ca_location=path(self.kafka_ssl_ca_location),
            ssl_certificate_location=path(self.kafka_ssl_certificate_location),
            ssl_key_location=path(self.kafka_ssl_key_location),
            ssl_key_password=self.kafka_ssl_key_password,
        )

    @property
    def sqlalchemy_url(self) -> str:
        """The same database for SQLAlchemy/Alembic, with the psycopg 3 driver named."""
        scheme, _, rest = self.database_url.partition("://")
        return (
            f"postgresql+psycopg://{rest}" if scheme != "postgresql+psycopg" else self.database_url
        )

    @property
    def libpq_url(self) -> str:
        """The database URL as libpq/psycopg understands it."""
        _, _, rest = self.database_url.partition("://")
        return f"postgresql://{rest}"


class IdSecretSettings(BaseSettings):
    """The deployment secret lead ids are derived under (ingest, poller, backfill): set once
    when the deployment is set up; changing it gives orders seen again new lead ids."""

    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore")

    id_secret: SecretStr

    @field_validator("id_secret")
    @classmethod
    def _id_secret_long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().strip().encode()) < MIN_ID_SECRET_BYTES:
            raise ValueError(
                f"must be at least {MIN_ID_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
            )
        return value

    @property
    def lead_ids(self) -> LeadIdKey:
        return LeadIdKey(self.id_secret.get_secret_value().strip().encode())


class LinkSigningSettings(BaseSettings):
    """Keys that sign links in messages (unsubscribe) and operator sessions: the first signs,
    all verify (ingest verifies, outbound signs)."""

    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore")

    link_signing_keys: SecretStr

    @field_validator("link_signing_keys")
    @classmethod
    def _signing_keys(cls, value: SecretStr) -> SecretStr:
        parse_signing_keys(value.get_secret_value())
        return value

    def _signer(self, purpose: bytes) -> Signer:
        return Signer(parse_signing_keys(self.link_signing_keys.get_secret_value()), purpose)

    @property
    def unsubscribe_signer(self) -> Signer:
        return self._signer(UNSUBSCRIBE)

    @property
    def session_signer(self) -> Signer:
        return self._signer(OPERATOR_SESSION)


class SecretsEncryptionSettings(BaseSettings):
    """Fernet keys of the secrets stored in PostgreSQL (companies' API keys and webhook
    secrets): the first encrypts, all decrypt."""

    model_config = SettingsConfigDict(env_file=ENV_FILES, extra="ignore")

    secrets_encryption_keys: SecretStr

    @field_validator("secrets_encryption_keys")
    @classmethod
    def _fernet_keys(cls, value: SecretStr) -> SecretStr:
        parse_keys(value.get_secret_value())
        return value

    @property
    def secret_box(self) -> SecretBox:
        return SecretBox.from_setting(self.secrets_encryption_keys.get_secret_value())


class ShopmonkeySettings(BaseSettings):
    """Shopmonkey API access (ingest and poller; replay's backfill)."""

    shopmonkey_api_key: SecretStr | None = None
    shopmonkey_company_id: str | None = None
    shopmonkey_api_base_url: str = "https://api.shopmonkey.cloud/v3"
    shopmonkey_timeout_seconds: float = Field(default=10.0, gt=0)


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build a settings object or raise `ConfigError` naming each offending variable."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            # a check across settings names its variables in the message itself
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {msg}" if name else msg)
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
