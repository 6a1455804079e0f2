"""Short versions of chaos scenarios (a) and (d) (bench/chaos: `make chaos` runs all six at
full load): the whole pipeline (ingest, sequencer, outbound, the fake SendGrid) on the 3-node
cluster with RF 3 / min ISR 2, signed webhooks at a steady rate, and one fault mid-load. Every
webhook answered 2xx is in Kafka and became a lead in PostgreSQL, every lead's first email
reached the provider exactly once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.chaos.cluster import LocalCluster
from bench.chaos.run import Timing, run_scenario
from bench.chaos.scenarios import SCENARIOS

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

SHORT = Timing(rate=20.0, warmup=3.0, baseline=5.0, after=12.0, drain=180.0)


def check(result: dict[str, Any]) -> None:
    shown = {k: v for k, v in result.items() if k != "logs"}
    assert result["webhooks_2xx"] == result["webhooks_sent"] > 0, shown
    assert result["lost_webhooks"] == 0, shown
    assert result["lost_leads"] == 0, shown
    assert result["duplicate_sends"] == 0, shown
    assert result["leads_without_send"] == 0, shown
    assert result["passed"], result.get("logs", shown)


@pytest.mark.parametrize("key", ["a", "d"])
def test_nothing_is_lost_or_sent_twice_when(
    key: str, cluster: LocalCluster, db_url: str, tmp_path: Path
) -> None:
    """(a) a broker is SIGKILLed mid-load and restarted; (d) outbound is SIGKILLed mid-batch
    and restarted."""
    result = run_scenario(
        SCENARIOS[key],
        cluster=cluster,
        db_url=db_url,
        workdir=tmp_path,
        timing=SHORT,
        tenants=20,
    )
    print({k: v for k, v in result.items() if k != "logs"})
    check(result)
