"""What every service (and leadctl) checks of Kafka before it starts working:

- the cluster accepts our transport settings: a refused password, an untrusted certificate or
  a TLS client at a PLAINTEXT port stops the process at once with a `ConfigError` naming the
  setting to fix. librdkafka alone would retry forever (the error only reaches `error_cb`) and
  aiokafka's start() raises a bare "Unable to bootstrap". A cluster that merely does not
  answer yet is not an error here: the services wait for it as before;
- the project's topics are as durable as the settings ask: each existing topic whose
  replication factor or min.insync.replicas is below them gets a warning (the fix is
  `leadctl topics fix`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from services.common.errors import ConfigError, InfrastructureError
from services.common.kafka.admin import Durability, TopicReport, inspect_topics
from services.common.kafka.config import client_config
from services.common.kafka.connection import KafkaConnection
from services.common.settings import CommonSettings

log = logging.getLogger(__name__)

#: librdkafka's own log lines during the probe (every refused attempt) are not ours to print.
_QUIET = logging.getLogger("services.common.kafka.startup.librdkafka")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


#: How librdkafka words a TLS handshake our settings cannot pass (untrusted broker certificate,
#: a client certificate the broker refuses). It names that failure _SSL or, when it sees the
#: broker close the connection first, _TRANSPORT: the reason is what tells.
_TLS_FAILURES = ("certificate verify failed", "SSL handshake failed")


def _tls_failed(code: int, text: str) -> bool:
    return code == KafkaError._SSL or (
        code == KafkaError._TRANSPORT and any(words in text for words in _TLS_FAILURES)
    )


def refusal(kafka: KafkaConnection, error: KafkaError) -> ConfigError | None:
    """The configuration error an error of the connection probe stands for, or None when it
    may be transient (broker down, network)."""
    code, text = error.code(), error.str()
    where = kafka.describe()
    if code == KafkaError._AUTHENTICATION:
        if "Unsupported SASL mechanism" in text:
            names = "KAFKA_SASL_MECHANISM"
        else:
            names = "KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD"
        return ConfigError(f"Kafka at {where} refused the credentials: check {names} ({text})")
    if _tls_failed(code, text):
        names = "KAFKA_SSL_CA_LOCATION"
        if kafka.ssl_certificate_location:
            names += " / KAFKA_SSL_CERTIFICATE_LOCATION / KAFKA_SSL_KEY_LOCATION"
        return ConfigError(f"TLS with Kafka at {where} failed: check {names} ({text})")
    if code == KafkaError._TRANSPORT and "PLAINTEXT broker listener" in text:
        return ConfigError(
            f"Kafka at {where}: that port is a PLAINTEXT listener; check "
            f"KAFKA_SECURITY_PROTOCOL / KAFKA_BOOTSTRAP_SERVERS ({text})"
        )
    return None


def verify_connection(kafka: KafkaConnection, *, timeout: float = 10.0) -> bool:
    """True once the cluster answered a metadata request with our settings; False when it
    does not answer (yet); raises `ConfigError` when it refuses them."""
    errors: list[KafkaError] = []
    admin = AdminClient(client_config(kafka, error_cb=errors.append, logger=_QUIET))
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        try:
            admin.list_topics(timeout=0.5)
            return True
        except KafkaException:
            admin.poll(0)  # serves error_cb
        batch, seen = errors[seen:], len(errors)
        for error in batch:  # a refusal anywhere in the batch outweighs "all brokers down"
            refused = refusal(kafka, error)
            if refused is not None:
                raise refused
        if any(error.code() == KafkaError._ALL_BROKERS_DOWN for error in batch):
            log.warning("Kafka at %s does not answer (yet)", kafka.describe())
            return False
    log.warning("Kafka at %s did not answer within %.0f s", kafka.describe(), timeout)
    return False


def warn_under_replicated(
    kafka: KafkaConnection, names: Iterable[str], durability: Durability
) -> list[TopicReport]:
    """Log a warning for each existing topic less durable than `durability`; returns them."""
    try:
        reports = inspect_topics(kafka, names, durability=durability, timeout=10.0)
    except InfrastructureError as exc:
        log.warning("could not inspect the topics' replication: %s", exc)
        return []
    weak = [r for r in reports if r.under_replicated]
    for r in weak:
        log.warning(
            "topic %s is less durable than KAFKA_REPLICATION_FACTOR=%d / "
            "KAFKA_MIN_INSYNC_REPLICAS=%d (%s): run `leadctl topics fix`",
            r.name,
            durability.replication,
            durability.min_insync,
            "; ".join(r.problems),
        )
    return weak


def durability_of(settings: CommonSettings) -> Durability:
    return Durability(settings.kafka_replication_factor, settings.kafka_min_insync)


def check_kafka(settings: CommonSettings, extra_topics: Iterable[str] = ()) -> None:
    """At a service's start: our transport settings work (else `ConfigError`), and the
    project's topics (plus `extra_topics`, e.g. Faust's) are durable enough (else warnings)."""
    if verify_connection(settings.kafka):
        names = [*settings.topics.with_dlqs(), *extra_topics]
        warn_under_replicated(settings.kafka, names, durability_of(settings))
