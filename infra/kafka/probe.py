"""Kafka probes and admin steps for infra/kafka.sh, run with the project's venv
(confluent-kafka). Not part of the services; exit status is what the script reads.

    probe.py answers BOOTSTRAP        a broker answers a metadata request (exit 0, else 1).
                                      Client settings from the environment as the services
                                      read them: KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_MECHANISM,
                                      KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD,
                                      KAFKA_SSL_CA_LOCATION (PLAINTEXT when unset)
    probe.py nodes LABEL=ID@HOST:PORT ...   one line per node that answers on its PLAINTEXT
                                      listener and lists itself (broker ID) in its metadata:
                                      "<label> <brokers it sees>"
    probe.py scram BOOTSTRAP USER     does USER have a SCRAM-SHA-512 credential? (exit 0 / 4)
    probe.py scram-set BOOTSTRAP USER create or replace it; password from KAFKA_SASL_PASSWORD
                                      (never on the command line)
"""

from __future__ import annotations

import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

SCRAM_ITERATIONS = 8192
QUIET = logging.getLogger("infra.kafka.probe")  # librdkafka's log lines: dropped
QUIET.addHandler(logging.NullHandler())
QUIET.propagate = False


def admin(bootstrap: str, *, from_env: bool = False) -> AdminClient:
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap,
        "socket.connection.setup.timeout.ms": 2000,
        "log_level": 0,
        "logger": QUIET,
    }
    if from_env:
        protocol = os.environ.get("KAFKA_SECURITY_PROTOCOL", "").strip()
        if protocol and protocol.upper() != "PLAINTEXT":
            conf["security.protocol"] = protocol
            for key, var in (
                ("sasl.mechanism", "KAFKA_SASL_MECHANISM"),
                ("sasl.username", "KAFKA_SASL_USERNAME"),
                ("sasl.password", "KAFKA_SASL_PASSWORD"),
                ("ssl.ca.location", "KAFKA_SSL_CA_LOCATION"),
            ):
                if os.environ.get(var):
                    conf[key] = os.environ[var]
    return AdminClient(conf)


def answers(bootstrap: str) -> int:
    try:
        return 0 if admin(bootstrap, from_env=True).list_topics(timeout=2).brokers else 1
    except Exception:
        return 1


def _node(spec: str) -> str | None:
    label, _, rest = spec.partition("=")
    node_id, _, hostport = rest.partition("@")
    try:
        brokers = admin(hostport).list_topics(timeout=2).brokers
    except Exception:
        return None
    return f"{label} {len(brokers)}" if int(node_id) in brokers else None


def nodes(specs: list[str]) -> int:
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:
        for line in pool.map(_node, specs):
            if line:
                print(line)
    return 0


def scram_exists(bootstrap: str, user: str) -> int:
    client = admin(bootstrap)  # kept alive until the result is in
    future = client.describe_user_scram_credentials([user])[user]
    try:
        description = future.result(timeout=10)
    except KafkaException:
        return 4  # RESOURCE_NOT_FOUND: no credential for this user
    mechanisms = {info.mechanism for info in description.scram_credential_infos}
    return 0 if ScramMechanism.SCRAM_SHA_512 in mechanisms else 4


def scram_set(bootstrap: str, user: str) -> int:
    password = os.environ["KAFKA_SASL_PASSWORD"].encode()
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password
    )
    client = admin(bootstrap)
    client.alter_user_scram_credentials([upsert])[user].result(timeout=15)
    return 0


def main(argv: list[str]) -> int:
    match argv:
        case ["answers", bootstrap]:
            return answers(bootstrap)
        case ["nodes", *specs] if specs:
            return nodes(specs)
        case ["scram", bootstrap, user]:
            return scram_exists(bootstrap, user)
        case ["scram-set", bootstrap, user]:
            return scram_set(bootstrap, user)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
