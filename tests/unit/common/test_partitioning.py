"""Tenant keys and partitions: the Java/aiokafka murmur2 placement, written once."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from services.common.kafka.partitioning import partition_for, tenant_key, tenant_of_key


@given(st.uuids(), st.integers(min_value=1, max_value=1000))
def test_a_tenant_always_lands_on_one_partition_in_range(tenant: uuid.UUID, n: int) -> None:
    p = partition_for(tenant, n)
    assert 0 <= p < n
    assert partition_for(str(tenant), n) == p


def test_partition_matches_aiokafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    for i in range(200):
        tenant = uuid.uuid5(uuid.NAMESPACE_URL, f"tenant-{i}")
        assert partition_for(tenant, 12) == partitioner(tenant_key(tenant), list(range(12)), [])


@given(st.uuids())
def test_tenant_keys_round_trip(tenant: uuid.UUID) -> None:
    assert tenant_of_key(tenant_key(tenant)) == tenant
    assert tenant_of_key(str(tenant)) == tenant


def test_keys_that_name_no_tenant_are_none() -> None:
    for key in (None, b"", b"not-a-uuid", b"\xff\xfe", 42, b"x" * 10_000):
        assert tenant_of_key(key) is None
