"""The client settings of the local broker's SASL_SSL listener (SCRAM-SHA-512 over TLS), as
`infra/kafka.sh sasl-env` prints them for the broker `make test` started. A checkout that
reuses a broker another checkout started finds them with KAFKA_STATE_DIR pointing at that
checkout's `.local/kafka` (sasl.env, tls/ca.pem); without them the tests FAIL, saying so."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
from pydantic import SecretStr

from services.common.kafka.connection import KafkaConnection
from tests.conftest import ROOT

KAFKA_SH = str(ROOT / "infra" / "kafka.sh")


def sasl_env() -> dict[str, str]:
    """KAFKA_* settings of the SASL_SSL listener (fails the test when there are none)."""
    printed = subprocess.run(
        ["bash", KAFKA_SH, "sasl-env"], capture_output=True, text=True, timeout=60
    )
    if printed.returncode != 0:
        status = subprocess.run(["bash", KAFKA_SH, "status"], capture_output=True, text=True)
        pytest.fail(
            "no SASL_SSL settings for the local broker: `infra/kafka.sh sasl-env` says "
            f"{printed.stderr.strip() or printed.stdout.strip()!r}. `make test` starts the "
            "broker with them; a broker started by another checkout needs KAFKA_STATE_DIR="
            f"<that checkout>/.local/kafka (status: {status.stdout.strip()})"
        )
    return dict(line.split("=", 1) for line in printed.stdout.split())


def connection(env: dict[str, str], **changes: Any) -> KafkaConnection:
    """The `KafkaConnection` the services build from these settings."""
    values: dict[str, Any] = {
        "bootstrap": env["KAFKA_BOOTSTRAP_SERVERS"],
        "security_protocol": env["KAFKA_SECURITY_PROTOCOL"],
        "sasl_mechanism": env["KAFKA_SASL_MECHANISM"],
        "sasl_username": env["KAFKA_SASL_USERNAME"],
        "sasl_password": SecretStr(env["KAFKA_SASL_PASSWORD"]),
        "ssl_ca_location": env["KAFKA_SSL_CA_LOCATION"],
    }
    return KafkaConnection(**(values | changes))
