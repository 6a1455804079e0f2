"""Kafka settings: replication and transport security are one set of variables, mapped once per
client library (librdkafka, aiokafka, Faust), and a combination that cannot work stops the
process at start naming the variable. Secrets never show in a repr or a description."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest
from pydantic import SecretStr

from services.common.errors import ConfigError
from services.common.kafka.admin import Durability
from services.common.kafka.config import consumer_config, producer_config
from services.common.kafka.connection import KafkaConnection
from services.common.settings import CommonSettings, load_settings
from services.sequencer.adapters.faust_transport import broker_credentials
from services.sequencer.entrypoints.faust_app import faust_app, internal_topics
from services.sequencer.settings import SequencerSettings

PASSWORD = "s3cret-Pa55"


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    """A real CA certificate (the system's bundle, copied) the TLS context can load."""
    bundle = Path(ssl.get_default_verify_paths().openssl_cafile)
    target = tmp_path / "ca.pem"
    target.write_bytes(bundle.read_bytes())
    return target


@pytest.fixture
def sasl_ssl(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> Path:
    for key, value in {
        "KAFKA_BOOTSTRAP_SERVERS": "b1:9094,b2:9094",
        "KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
        "KAFKA_SASL_MECHANISM": "scram-sha-512",
        "KAFKA_SASL_USERNAME": "orchestrator",
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CA_LOCATION": str(ca_file),
    }.items():
        monkeypatch.setenv(key, value)
    return ca_file


def test_replication_defaults_to_one_replica_and_min_isr_follows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = load_settings(CommonSettings)
    assert (settings.kafka_replication_factor, settings.kafka_min_insync) == (1, 1)
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    assert load_settings(CommonSettings).kafka_min_insync == 2
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "3")
    assert load_settings(CommonSettings).kafka_min_insync == 3
    monkeypatch.setenv("KAFKA_MIN_INSYNC_REPLICAS", "")  # blank in .env = the default
    assert load_settings(CommonSettings).kafka_min_insync == 2
    assert Durability.of(3) == Durability(3, 2)
    assert Durability.of(1) == Durability(1, 1)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_REPLICATION_FACTOR": "2", "KAFKA_MIN_INSYNC_REPLICAS": "3"}, "KAFKA_MIN_INSYNC"),
        ({"KAFKA_REPLICATION_FACTOR": "0"}, "KAFKA_REPLICATION_FACTOR"),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"},
            "KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        ({"KAFKA_SSL_CA_LOCATION": "/no/such/ca.pem"}, "KAFKA_SSL_CA_LOCATION"),
        ({"KAFKA_SSL_KEY_LOCATION": "/etc/hostname"}, "KAFKA_SSL_CERTIFICATE_LOCATION"),
    ],
)
def test_a_kafka_setting_that_cannot_work_stops_the_start_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named):
        load_settings(CommonSettings)


@pytest.mark.usefixtures("sasl_ssl")
def test_librdkafka_clients_get_the_transport_settings_and_keep_acks_all() -> None:
    kafka = load_settings(CommonSettings).kafka
    expected = {
        "bootstrap.servers": "b1:9094,b2:9094",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "orchestrator",
        "sasl.password": PASSWORD,
        "ssl.ca.location": kafka.ssl_ca_location,
    }
    producer = producer_config(kafka, client_id="p")
    consumer = consumer_config(kafka, group_id="g", client_id="c")
    assert expected.items() <= producer.items()
    assert expected.items() <= consumer.items()
    assert (producer["acks"], producer["enable.idempotence"]) == ("all", True)
    # a bare bootstrap string is a PLAINTEXT cluster (tests, benchmarks)
    assert KafkaConnection.of("localhost:9092").librdkafka() == {
        "bootstrap.servers": "localhost:9092"
    }


@pytest.mark.usefixtures("sasl_ssl")
def test_secrets_stay_out_of_reprs_and_descriptions() -> None:
    kafka = load_settings(CommonSettings).kafka
    assert PASSWORD not in repr(kafka)
    assert PASSWORD not in kafka.describe()
    assert kafka.describe() == "b1:9094,b2:9094 over SASL_SSL as orchestrator (SCRAM-SHA-512)"


@pytest.mark.usefixtures("sasl_ssl")
def test_aiokafka_and_faust_get_the_same_user_and_a_verifying_tls_context() -> None:
    kafka = load_settings(CommonSettings).kafka
    kwargs = kafka.aiokafka()
    assert {k: v for k, v in kwargs.items() if k != "ssl_context"} == {
        "bootstrap_servers": "b1:9094,b2:9094",
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "orchestrator",
        "sasl_plain_password": PASSWORD,
    }
    context = kwargs["ssl_context"]
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("orchestrator", PASSWORD)
    assert credentials.ssl_context is not None


def test_faust_gets_tls_alone_and_nothing_for_plaintext(ca_file: Path) -> None:
    tls = KafkaConnection("b:9093", "SSL", ssl_ca_location=str(ca_file))
    credentials = broker_credentials(tls)
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert broker_credentials(KafkaConnection("b:9092")) is None
    plain_sasl = KafkaConnection(
        "b:9092", "SASL_PLAINTEXT", "PLAIN", "u", SecretStr("p"), ssl_ca_location=None
    )
    assert "ssl.ca.location" not in plain_sasl.librdkafka()
    assert broker_credentials(plain_sasl).protocol.value == "SASL_PLAINTEXT"  # type: ignore[union-attr]


def test_the_faust_app_replicates_its_changelogs_and_ticks_as_the_settings_ask(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", "env1.")
    settings = load_settings(
        SequencerSettings, sequencer_store="memory://", sequencer_data_dir=tmp_path
    )
    app = faust_app(settings)
    assert app.conf.topic_replication_factor == 3
    assert internal_topics(settings) == [
        "env1.lead-sequencer-leads-changelog",
        "env1.lead-sequencer-customers-changelog",
        "env1.lead-sequencer-ticks",
    ]
