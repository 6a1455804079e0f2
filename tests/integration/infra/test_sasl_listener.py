"""The SASL_SSL listener (SCRAM-SHA-512 over TLS) of the broker `make test` starts
(`infra/kafka.sh up`; tests/support/sasl.py): the client settings `infra/kafka.sh sasl-env`
prints reach it with confluent-kafka and with aiokafka (what Faust uses), and a wrong password
is an authentication error within seconds, not a hang. The broker's certificate is verified
(hostname included)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError
from aiokafka.helpers import create_ssl_context
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.sasl import KAFKA_SH, sasl_env

pytestmark = pytest.mark.integration

QUIET = logging.getLogger("tests.sasl.librdkafka")  # librdkafka's own log lines: dropped
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


@pytest.fixture(scope="module")
def sasl(kafka_bootstrap: str) -> dict[str, str]:
    """KAFKA_* client settings of the local broker's SASL_SSL listener (never skipped: without
    them the test fails, naming what is missing)."""
    settings = sasl_env()
    admin = AdminClient({**librdkafka(settings), "socket.timeout.ms": 5000})
    try:
        admin.list_topics(timeout=10)
    except Exception as exc:
        status = subprocess.run(["bash", KAFKA_SH, "status"], capture_output=True, text=True)
        pytest.fail(
            f"no SASL_SSL listener answers at {settings['KAFKA_BOOTSTRAP_SERVERS']} ({exc}); "
            "a broker started before it existed needs `infra/kafka.sh restart` "
            f"(`infra/kafka.sh status` says: {status.stdout.strip()})"
        )
    return settings


def librdkafka(settings: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """The librdkafka configuration for these settings."""
    return {
        "bootstrap.servers": settings["KAFKA_BOOTSTRAP_SERVERS"],
        "security.protocol": settings["KAFKA_SECURITY_PROTOCOL"],
        "sasl.mechanism": settings["KAFKA_SASL_MECHANISM"],
        "sasl.username": settings["KAFKA_SASL_USERNAME"],
        "sasl.password": settings["KAFKA_SASL_PASSWORD"],
        "ssl.ca.location": settings["KAFKA_SSL_CA_LOCATION"],
        "logger": QUIET,
        **overrides,
    }


def aiokafka(settings: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """The aiokafka (and Faust broker_credentials) keyword arguments for these settings."""
    return {
        "bootstrap_servers": settings["KAFKA_BOOTSTRAP_SERVERS"],
        "security_protocol": settings["KAFKA_SECURITY_PROTOCOL"],
        "sasl_mechanism": settings["KAFKA_SASL_MECHANISM"],
        "sasl_plain_username": settings["KAFKA_SASL_USERNAME"],
        "sasl_plain_password": settings["KAFKA_SASL_PASSWORD"],
        "ssl_context": create_ssl_context(cafile=settings["KAFKA_SSL_CA_LOCATION"]),
        **overrides,
    }


def new_topic(settings: dict[str, str]) -> str:
    topic = f"sasl-check-{uuid.uuid4().hex[:10]}"
    admin = AdminClient(librdkafka(settings))
    admin.create_topics([NewTopic(topic, num_partitions=1)])[topic].result(15)
    return topic


def test_confluent_kafka_round_trip_through_sasl_ssl(sasl: dict[str, str]) -> None:
    topic = new_topic(sasl)
    producer = Producer(librdkafka(sasl, acks="all", **{"enable.idempotence": True}))
    producer.produce(topic, b"over SASL_SSL", key=b"k")
    assert producer.flush(15) == 0
    consumer = Consumer(librdkafka(sasl, **{"group.id": topic, "auto.offset.reset": "earliest"}))
    consumer.subscribe([topic])
    deadline = time.monotonic() + 20
    msg = None
    while time.monotonic() < deadline and (msg is None or msg.error()):
        msg = consumer.poll(0.5)
    consumer.close()
    assert msg is not None and not msg.error(), msg and msg.error()
    assert (msg.key(), msg.value()) == (b"k", b"over SASL_SSL")


async def test_aiokafka_round_trip_through_sasl_ssl(sasl: dict[str, str]) -> None:
    topic = new_topic(sasl)
    producer = AIOKafkaProducer(**aiokafka(sasl), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"aiokafka over SASL_SSL", key=b"k")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic, **aiokafka(sasl), group_id=topic, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        msg = await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()
    assert (msg.key, msg.value) == (b"k", b"aiokafka over SASL_SSL")


def first_error(conf: dict[str, Any], within: float = 10.0) -> tuple[float, KafkaError]:
    """Start a producer and return (seconds, error) of the first error it reports."""
    errors: list[tuple[float, KafkaError]] = []
    start = time.monotonic()
    producer = Producer({**conf, "error_cb": lambda e: errors.append((time.monotonic(), e))})
    producer.produce("sasl-wrong-password", b"never")
    while not errors and time.monotonic() - start < within:
        producer.poll(0.1)
    producer.purge()
    assert errors, f"no error reported within {within:.0f} s"
    at, error = errors[0]
    return at - start, error


def test_wrong_password_is_an_authentication_error_within_seconds(sasl: dict[str, str]) -> None:
    seconds, error = first_error(librdkafka(sasl, **{"sasl.password": "not-the-password"}))
    assert error.code() == KafkaError._AUTHENTICATION, error
    assert "invalid credentials" in error.str()
    assert seconds < 5, seconds  # measured: ~0.3 s


def test_broker_certificate_is_verified(sasl: dict[str, str]) -> None:
    """Without the local CA (system trust store only) the TLS handshake fails at once."""
    conf = librdkafka(sasl)
    del conf["ssl.ca.location"]
    seconds, error = first_error(conf)
    # librdkafka names the same failed handshake _SSL or, when the broker's close is seen
    # first, _TRANSPORT (CI 2026-12-05); the reason is the same either way.
    assert error.code() in (KafkaError._SSL, KafkaError._TRANSPORT), error
    assert "certificate verify failed" in error.str(), error
    assert seconds < 5, seconds


async def test_aiokafka_wrong_password_fails_start_within_seconds(
    sasl: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    """aiokafka's start() raises KafkaConnectionError ("Unable to bootstrap"); the reason,
    SaslAuthenticationFailed, is only in its log (logger "aiokafka")."""
    producer = AIOKafkaProducer(**aiokafka(sasl, sasl_plain_password="not-the-password"))
    start = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="aiokafka"), pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()
    assert time.monotonic() - start < 5
    assert "Authentication failed" in caplog.text
