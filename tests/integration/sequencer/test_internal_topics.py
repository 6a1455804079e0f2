"""The sequencer creates its Faust topics (changelogs, ticks) before its worker joins the
group, each with the configuration Faust would give it. Left to Faust, the first assignment
could come before the broker's metadata showed a just-created ticks topic: the assignor
ignored it ("Ignoring missing topic") and no tick partition was owned until a rebalance."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from services.sequencer.entrypoints.faust_app import (
    declare_internal_topics,
    internal_topic_configs,
    tick_topic,
)
from services.sequencer.settings import SequencerSettings

pytestmark = pytest.mark.integration


def configs(admin: AdminClient, name: str) -> dict[str, str]:
    resource = ConfigResource(ResourceType.TOPIC, name)
    described = admin.describe_configs([resource])[resource].result(timeout=30)
    return {key: entry.value for key, entry in described.items()}


def test_the_faust_topics_exist_with_faust_configuration_before_the_worker_starts(
    kafka_bootstrap: str,
) -> None:
    settings = SequencerSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        kafka_topic_prefix=f"t{uuid.uuid4().hex[:10]}.",
        kafka_partitions=4,
    )
    wanted = internal_topic_configs(settings)
    assert tick_topic(settings) in wanted and len(wanted) >= 3  # ticks and every changelog
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    assert not set(wanted) & set(admin.list_topics(timeout=10).topics)

    declare_internal_topics(settings)

    topics = admin.list_topics(timeout=10).topics
    for name, config in wanted.items():
        assert name in topics and len(topics[name].partitions) == 4, name
        assert configs(admin, name) | config == configs(admin, name), name
        assert configs(admin, name)["min.insync.replicas"] == "1", name
    ticks = configs(admin, tick_topic(settings))
    assert (ticks["cleanup.policy"], ticks["retention.ms"]) == ("delete", "3600000")
    changelogs = [n for n in wanted if n.endswith("-changelog")]
    assert {configs(admin, n)["cleanup.policy"] for n in changelogs} == {"compact"}

    declare_internal_topics(settings)  # a restart: the topics are there, nothing changes
    assert admin.list_topics(timeout=10).topics.keys() >= wanted.keys()


def test_the_sequencer_command_declares_them_before_it_runs_the_worker(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from services.sequencer.entrypoints import cli

    steps: list[str] = []

    class Worker:
        def run(self) -> None:
            steps.append("run")

    monkeypatch.setattr(cli, "declare_internal_topics", lambda s: steps.append("declare"))
    monkeypatch.setattr(cli, "build", lambda settings, projection: Worker())
    # the worker's uvloop policy, not this test process's (it would outlive the test)
    monkeypatch.setattr(cli, "use_fast_event_loop", lambda: steps.append("uvloop"))
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", f"t{uuid.uuid4().hex[:10]}.")
    result = CliRunner().invoke(cli.sequencer, [])
    assert result.exit_code == 0, result.output
    assert steps == ["declare", "uvloop", "run"]
