"""The benches delete what a run made on the broker, and wait until it is gone.

Each bench run makes its own topics (a fresh prefix; Faust adds its tables' changelogs under
it). Deleting them with a request nobody waited for, from a process about to exit, left them
all behind: the dev broker had 2,500 such topics (10,500 partitions) and every later run paid
for them (a high-watermark checkpoint over every partition each 5 s, metadata listing them).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from bench.common import delete_topics_with_prefix
from services.common.kafka.admin import admin_client, ensure_topics
from tests.conftest import new_topic_prefix


def _names(bootstrap: str, prefix: str) -> list[str]:
    topics = admin_client(bootstrap).list_topics(timeout=10).topics
    return sorted(n for n in topics if n.startswith(prefix))


def test_a_run_leaves_no_topic_of_its_prefix_even_when_it_exits_at_once(
    kafka_bootstrap: str,
) -> None:
    prefix = new_topic_prefix("cleanup")
    other = new_topic_prefix("kept")
    # declared ones, one a framework made on its own, and one of another run
    names = [f"{prefix}leads.order-events.v1", f"{prefix}sequencer-leads-changelog", f"{other}x"]
    ensure_topics(kafka_bootstrap, partitions=2, names=names)
    assert len(_names(kafka_bootstrap, prefix)) == 2

    # as a bench does: the last thing before its process exits
    script = textwrap.dedent(
        f"""
        from bench.common import delete_topics_with_prefix
        failed = delete_topics_with_prefix({kafka_bootstrap!r}, {prefix!r})
        raise SystemExit(1 if failed else 0)
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)

    assert _names(kafka_bootstrap, prefix) == []  # gone when the process has exited
    assert _names(kafka_bootstrap, other) == [f"{other}x"]  # another run's are not touched


def test_an_empty_prefix_is_refused_rather_than_deleting_every_topic() -> None:
    with pytest.raises(ValueError, match="empty prefix"):
        delete_topics_with_prefix("127.0.0.1:1", "")
