"""Tenant keys and the partition they land on (DESIGN §2): every topic is keyed by tenant id,
and every client places a key with the murmur2 partitioner (Java, aiokafka and Faust do;
our librdkafka producers set `murmur2_random`). The one copy of that arithmetic."""

from __future__ import annotations

import uuid


def tenant_key(tenant_id: uuid.UUID | str) -> bytes:
    """The record key of a tenant's records: its id as text."""
    return str(tenant_id).encode()


def tenant_of_key(key: object) -> uuid.UUID | None:
    """The tenant a record key names, or None when the key is missing or not a tenant id."""
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes | bytearray | memoryview):
        return None
    try:
        return uuid.UUID(bytes(key).decode())
    except (ValueError, UnicodeDecodeError):
        return None


def partition_of_key(key: bytes, partitions: int) -> int:
    """The partition the murmur2 partitioner gives `key` among `partitions`."""
    from aiokafka.partitioner import murmur2  # here: tenant keys alone never load aiokafka

    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def partition_for(tenant_id: uuid.UUID | str, partitions: int) -> int:
    """The partition of a tenant's records among `partitions`."""
    return partition_of_key(tenant_key(tenant_id), partitions)
