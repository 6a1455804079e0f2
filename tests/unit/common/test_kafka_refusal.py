"""Which errors of the start-up connection probe are our settings' fault (a ConfigError naming
the setting) and which may pass (broker down): librdkafka names an untrusted broker
certificate _SSL or, when it sees the broker's close first, _TRANSPORT."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from pydantic import SecretStr

from services.common.kafka.connection import KafkaConnection
from services.common.kafka.startup import refusal

SASL_SSL = KafkaConnection(
    bootstrap="localhost:9094",
    security_protocol="SASL_SSL",
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="orchestrator",
    sasl_password=SecretStr("secret"),
)
UNTRUSTED = (
    "sasl_ssl://localhost:9094/bootstrap: error:0A000086:SSL routines::certificate verify failed"
)


@pytest.mark.parametrize(
    "error",
    [
        KafkaError(KafkaError._SSL, "SSL handshake failed: " + UNTRUSTED),
        KafkaError(KafkaError._TRANSPORT, UNTRUSTED + " (after 2ms in state SSL_HANDSHAKE)"),
    ],
    ids=["_SSL", "_TRANSPORT"],
)
def test_an_untrusted_certificate_names_the_ca_setting_whatever_its_code(
    error: KafkaError,
) -> None:
    refused = refusal(SASL_SSL, error)
    assert refused is not None and "KAFKA_SSL_CA_LOCATION" in str(refused)
    assert "secret" not in str(refused)


def test_a_broker_that_is_down_is_no_refusal() -> None:
    down = "sasl_ssl://localhost:9094/bootstrap: Connect to ipv4#127.0.0.1:9094 failed"
    assert refusal(SASL_SSL, KafkaError(KafkaError._TRANSPORT, down)) is None
    assert refusal(SASL_SSL, KafkaError(KafkaError._ALL_BROKERS_DOWN, "1/1 brokers")) is None
