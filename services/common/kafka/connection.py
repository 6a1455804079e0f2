"""How every Kafka client reaches the cluster: the bootstrap servers and the transport security
(TLS, SASL), built once from the settings (`CommonSettings.kafka`) and mapped here once per
client library: librdkafka (`librdkafka()`, what config.py starts every dict from) and aiokafka
(`aiokafka()`, `ssl_context()`; Faust's credentials are made from them by the sequencer).

A bare bootstrap string stands for a PLAINTEXT cluster (`KafkaConnection.of`), which is what
tests and benchmarks against the local broker pass.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import SecretStr

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


@dataclass(frozen=True, slots=True)
class KafkaConnection:
    """Where the cluster is and how a client authenticates to it (secrets stay `SecretStr`)."""

    bootstrap: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: CA certificate(s) the broker's certificate is verified against (None: the system's).
    ssl_ca_location: str | None = None
    #: Client certificate and key (mutual TLS), optional.
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None

    @classmethod
    def of(cls, target: KafkaConnection | str) -> KafkaConnection:
        """`target` itself, or a PLAINTEXT connection to the bootstrap servers it names."""
        return target if isinstance(target, KafkaConnection) else cls(bootstrap=target)

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    def describe(self) -> str:
        """For logs and error messages: servers, protocol and user, never a secret."""
        who = f" as {self.sasl_username} ({self.sasl_mechanism})" if self.sasl else ""
        return f"{self.bootstrap} over {self.security_protocol}{who}"

    # librdkafka (confluent-kafka) ---------------------------------------------------------------
    def librdkafka(self) -> dict[str, Any]:
        """The librdkafka settings of this connection (every confluent client starts here)."""
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap}
        if self.security_protocol == "PLAINTEXT":
            return config
        config["security.protocol"] = self.security_protocol
        if self.sasl:
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username or ""
            config["sasl.password"] = _reveal(self.sasl_password)
        if self.tls:
            # the broker's hostname is verified too (librdkafka's default: https)
            if self.ssl_ca_location:
                config["ssl.ca.location"] = self.ssl_ca_location
            if self.ssl_certificate_location:
                config["ssl.certificate.location"] = self.ssl_certificate_location
            if self.ssl_key_location:
                config["ssl.key.location"] = self.ssl_key_location
            if self.ssl_key_password is not None:
                config["ssl.key.password"] = _reveal(self.ssl_key_password)
        return config

    # aiokafka (and Faust over it) -------------------------------------------------------------
    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying TLS context (CA, hostname) with the client certificate, or None."""
        if not self.tls:
            return None
        context = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=self.ssl_ca_location or None
        )
        if self.ssl_certificate_location:
            context.load_cert_chain(
                self.ssl_certificate_location,
                self.ssl_key_location or None,
                password=_reveal(self.ssl_key_password) or None,
            )
        return context

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's clients for this connection (bootstrap included)."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.sasl:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = _reveal(self.sasl_password)
        if self.tls:
            kwargs["ssl_context"] = self.ssl_context()
        return kwargs


def _reveal(secret: SecretStr | None) -> str:
    return "" if secret is None else secret.get_secret_value()


KafkaTarget = KafkaConnection | str
