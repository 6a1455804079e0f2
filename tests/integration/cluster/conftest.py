"""One private 3-node Kafka cluster (free ports, a temporary state directory; the shared broker
is never touched) for the tests of this folder, stopped with every JVM when they are done."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bench.chaos.cluster import LocalCluster, free_port_base


@pytest.fixture(scope="package")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster") / "kafka", free_port_base())
    try:
        yield cluster.up()
    finally:
        cluster.down()
