"""librdkafka configuration of every confluent-kafka client we build (producers, consumers,
admin clients), in one place: no client builds its own dict from scratch. Each starts from its
`KafkaConnection` (servers, TLS, SASL: connection.py); a bare bootstrap string is PLAINTEXT."""

from __future__ import annotations

from typing import Any

from services.common.kafka.connection import KafkaConnection, KafkaTarget


def client_config(kafka: KafkaTarget, **extra: Any) -> dict[str, Any]:
    """What every client needs to reach the cluster, plus `extra` librdkafka settings
    (dotted names as keyword arguments: `client_config(k, **{"client.id": "x"})`)."""
    return {**KafkaConnection.of(kafka).librdkafka(), **extra}


def producer_config(
    kafka: KafkaTarget, *, client_id: str, linger_ms: float = 1.0
) -> dict[str, Any]:
    """Idempotent, acks=all, murmur2 partitioner (same partition as aiokafka/Faust per key)."""
    return client_config(
        kafka,
        **{
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            # librdkafka defaults to CRC32; Faust/aiokafka/Java hash keys with murmur2 (DESIGN §2).
            "partitioner": "murmur2_random",
            "linger.ms": linger_ms,
            "message.timeout.ms": 30_000,
            "socket.keepalive.enable": True,
        },
    )


def consumer_config(
    kafka: KafkaTarget, *, group_id: str, client_id: str, auto_offset_reset: str = "earliest"
) -> dict[str, Any]:
    """At-least-once: offsets are stored by us after processing and auto-committed from there."""
    return client_config(
        kafka,
        **{
            "group.id": group_id,
            "client.id": client_id,
            "enable.auto.commit": True,
            "enable.auto.offset.store": False,
            "auto.commit.interval.ms": 1000,
            "auto.offset.reset": auto_offset_reset,
            "isolation.level": "read_committed",
            "session.timeout.ms": 10_000,
            "heartbeat.interval.ms": 2_000,
        },
    )
