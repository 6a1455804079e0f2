"""Pure parts of the dashboard: webhook rate/latency from registry snapshots, the summary JSON,
consumer-lag aggregation and caching."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from services.common.kafka.lag import PartitionLag
from services.ingest.adapters.lag_probe import LagProbe
from services.ingest.adapters.webhook_stats_prometheus import RegistryWebhookMeter
from services.ingest.domain.dashboard import (
    DeclinedWork,
    LagReport,
    LeadCounts,
    TouchCounts,
    Window,
    build_summary,
)
from services.ingest.domain.webhook_stats import WebhookHistory, WebhookStats, quantile, window

NOW = datetime(2026, 5, 1, 12, 0, 30, tzinfo=UTC)


def stats(
    at: float, requests: float, buckets: tuple[tuple[float, float], ...] = ()
) -> WebhookStats:
    count = buckets[-1][1] if buckets else 0.0
    return WebhookStats(
        at=at, available=True, requests=requests, latency_count=count, buckets=buckets
    )


def test_quantile_interpolates_like_prometheus_histogram_quantile() -> None:
    # 10 observations: 4 ≤ 10 ms, 6 in (10 ms, 20 ms]
    buckets = ((0.01, 4.0), (0.02, 10.0), (float("inf"), 10.0))
    assert quantile(0.5, buckets) == pytest.approx(0.01 + 0.01 * (5 - 4) / 6)
    assert quantile(0.95, buckets) == pytest.approx(0.01 + 0.01 * (9.5 - 4) / 6)
    # everything above the highest finite bound: that bound, as Prometheus answers
    assert quantile(0.5, ((0.01, 0.0), (float("inf"), 3.0))) == 0.01
    assert quantile(0.5, ()) is None and quantile(0.5, ((0.01, 0.0),)) is None


def test_window_is_the_difference_of_two_snapshots_and_survives_a_restart() -> None:
    older = stats(100.0, 50, ((0.01, 40.0), (float("inf"), 50.0)))
    newer = stats(110.0, 70, ((0.01, 40.0), (float("inf"), 70.0)))
    w = window(newer, older)
    assert w.requests == 20 and w.rate_per_second == pytest.approx(2.0)
    assert w.p50_ms == pytest.approx(10.0)  # the 20 new ones were all slower than 10 ms
    restarted = stats(120.0, 5, ((0.01, 5.0), (float("inf"), 5.0)))
    after = window(restarted, newer)
    assert after.requests == 5 and after.p95_ms is not None and after.p95_ms <= 10.0


def test_snapshot_reads_counter_and_histogram_from_a_registry() -> None:
    registry = CollectorRegistry()
    requests = Counter("hooks_total", "h", ["outcome"], registry=registry)
    latency = Histogram("hooks_seconds", "l", ["result"], registry=registry, buckets=(0.01, 0.1))
    requests.labels("accepted").inc(3)
    requests.labels("unauthorized").inc()
    latency.labels("ok").observe(0.005)
    latency.labels("4xx").observe(0.05)
    snap = RegistryWebhookMeter(
        registry, request_metric="hooks_total", latency_metric="hooks_seconds"
    ).snapshot(at=1.0)
    assert snap.available and snap.requests == 4
    assert snap.by_label == {"accepted": 3, "unauthorized": 1}
    assert snap.latency_count == 2 and snap.latency_sum == pytest.approx(0.055)
    assert snap.buckets == ((0.01, 1.0), (0.1, 2.0), (float("inf"), 2.0))
    missing = RegistryWebhookMeter(
        CollectorRegistry(), request_metric="hooks_total", latency_metric="hooks_seconds"
    ).snapshot()
    assert not missing.available and missing.requests == 0


def test_history_keeps_fine_samples_for_an_hour_and_coarse_ones_for_the_day() -> None:
    history = WebhookHistory(keep_seconds=24 * 3600, fine_seconds=3600, coarse_step=60)
    for i in range(0, 3 * 3600, 2):  # a sample every 2 s for 3 h, 1 request/s
        history.add(stats(float(i), float(i // 2)))
    assert len(history) < 1800 + 3 * 60 + 5  # not 5400 fine samples
    last = history.recent(60)
    assert last is not None and last.rate_per_second == pytest.approx(0.5)
    six_hours = history.series(6 * 3600)
    assert 60 <= len(six_hours) <= 61
    assert (six_hours[0]["t"] or 0) < 3 * 3600 - 3600 - 60  # reaches back past the fine hour
    assert all(p["rate"] == pytest.approx(0.5) for p in six_hours)
    assert len(history.series(300)) <= 60 and history.series(300)[-1]["t"] == 3 * 3600 - 2


def test_window_grid_clamps_and_picks_the_bucket_width() -> None:
    assert Window.of(60, NOW).bucket_seconds == 60
    assert Window.of(1440, NOW).bucket_seconds == 1800
    assert Window.of(1, NOW).minutes == 5 and Window.of(10**9, NOW).minutes == 7 * 24 * 60
    grid = Window.of(60, NOW).buckets()
    assert len(grid) == 61 and grid[-1] * 60 <= NOW.timestamp() < (grid[-1] + 1) * 60


def test_summary_counts_funnel_skip_rate_series_and_locations() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    win = Window.of(60, NOW)
    now_bucket = win.buckets()[-1]
    leads = LeadCounts(
        by_tenant={a: {"new": 3, "contacted": 1}, b: {"lost": 2}},
        created_per_bucket={now_bucket: 4, now_bucket - 1000: 9},  # the latter: outside
    )
    touches = TouchCounts(
        by_tenant={a: {"sent": 2, "skipped": 3, "claimed": 1}, b: {"deferred": 1}},
        whitelist_by_tenant={a: 2, b: 0},
        by_bucket={
            (now_bucket, "sent", "accepted"): 2,
            (now_bucket, "skipped", "not_whitelisted"): 2,
            (now_bucket - 1, "skipped", "suppressed"): 1,
            (now_bucket, "deferred", "outside_send_window"): 1,
        },
        by_channel={("email", "sent", "delivered"): 2, ("sms", "skipped", "-"): 3},
    )
    names = {a: "Alpha", b: "beta", c: "Gamma"}
    out = build_summary(
        window=win, tenant=None, names=names, leads=leads, touches=touches, webhooks={}, lag={}
    )
    assert out["funnel"] == {
        "new": 3,
        "contacted": 1,
        "engaged": 0,
        "qualified": 0,
        "appointment_set": 0,
        "completed": 0,
        "lost": 2,
    }
    assert out["leads_total"] == 6 and out["ingestion"]["in_window"] == 4
    assert out["touchpoints"]["totals"]["sent"] == 2
    assert out["skip_rate"] == {"whitelist_skips": 2, "decisions": 6, "ratio": 0.3333}
    assert out["touchpoints"]["series"]["sent"][-1] == 2
    assert out["touchpoints"]["series"]["skipped"][-2:] == [1, 2]
    assert [(r["status"], r["reason"], r["count"]) for r in out["touchpoints"]["reasons"]] == [
        ("sent", "accepted", 2),
        ("skipped", "not_whitelisted", 2),
        ("deferred", "outside_send_window", 1),
        ("skipped", "suppressed", 1),
    ]
    assert out["delivery"] == [
        {"channel": "email", "status": "sent", "delivery_status": "delivered", "count": 2}
    ]
    # busiest location first, then by name; a location without leads still listed
    assert [loc["name"] for loc in out["locations"]] == ["Alpha", "beta", "Gamma"]
    alpha = out["locations"][0]
    assert alpha["skip_rate"] == 0.4 and alpha["whitelist_skips"] == 2  # claimed: undecided
    assert out["locations"][2]["skip_rate"] is None

    one = build_summary(
        window=win, tenant=b, names=names, leads=leads, touches=touches, webhooks={}, lag={}
    )
    assert [loc["name"] for loc in one["locations"]] == ["beta"] and one["tenant"] == str(b)


def test_summary_shows_declined_work_brought_back_per_location_and_in_total() -> None:
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    win = Window.of(60, NOW)
    leads = LeadCounts(
        by_tenant={a: {"completed": 2}, b: {"new": 1}},
        declined_by_tenant={
            a: DeclinedWork(services=3, cents=120_000, revived_services=1, revived_cents=30_000),
            b: DeclinedWork(services=1, cents=45_050),
        },
    )
    names = {a: "Alpha", b: "Beta", c: "Gamma"}
    out = build_summary(
        window=win,
        tenant=None,
        names=names,
        leads=leads,
        touches=TouchCounts(),
        webhooks={},
        lag={},
    )
    assert out["declined"] == {
        "followed_up": {"services": 4, "cents": 165_050},
        "brought_back": {"services": 1, "cents": 30_000},
        "value_ratio": 0.1818,
    }
    by_name = {loc["name"]: loc["declined"] for loc in out["locations"]}
    assert by_name["Alpha"] == {
        "followed_up": {"services": 3, "cents": 120_000},
        "brought_back": {"services": 1, "cents": 30_000},
        "value_ratio": 0.25,
    }
    assert by_name["Beta"]["brought_back"] == {"services": 0, "cents": 0}
    assert by_name["Gamma"] == {  # no declined work: zeros, no ratio
        "followed_up": {"services": 0, "cents": 0},
        "brought_back": {"services": 0, "cents": 0},
        "value_ratio": None,
    }
    empty = build_summary(
        window=win, tenant=None, names=names, leads=LeadCounts(), touches=TouchCounts(),
        webhooks={}, lag={},
    )  # fmt: skip
    assert empty["declined"]["followed_up"] == {"services": 0, "cents": 0}


def test_lag_report_aggregates_partitions_per_group() -> None:
    rows = [
        PartitionLag("outbound", "t.cmd", 0, 5, 9),
        PartitionLag("outbound", "t.cmd", 1, -1001, 3),  # nothing committed: all behind
        PartitionLag("lead-sequencer", "t.ord", 0, 7, 7),
    ]
    out = LagReport(rows=rows, as_of=1.0).to_json()
    assert out["total"] == 7
    groups = {g["group"]: g for g in out["groups"]}
    assert groups["outbound"]["lag"] == 7 and groups["outbound"]["behind"] == 2
    assert groups["outbound"]["max"] == 4 and groups["lead-sequencer"]["lag"] == 0


async def test_lag_probe_caches_and_keeps_the_last_rows_when_kafka_fails() -> None:
    now = [0.0]
    calls: list[int] = []
    answer: list[PartitionLag] | Exception = [PartitionLag("g", "t", 0, 1, 4)]

    def read() -> list[PartitionLag]:
        calls.append(1)
        if isinstance(answer, Exception):
            raise answer
        return answer

    probe = LagProbe(read, ttl=5.0, clock=lambda: now[0])
    first = await probe.report()
    assert (await probe.report()) is first and len(calls) == 1
    now[0] = 6.0
    answer = RuntimeError("broker down")
    failed = await probe.report()
    assert failed.error == "broker down" and failed.rows == first.rows and len(calls) == 2


def test_decided_in_window_series_has_one_point_per_bucket() -> None:
    win = Window.of(15, NOW - timedelta(seconds=30))
    out = build_summary(
        window=win,
        tenant=None,
        names={},
        leads=LeadCounts(),
        touches=TouchCounts(),
        webhooks={},
        lag={},
    )
    assert len(out["buckets"]) == len(out["touchpoints"]["series"]["sent"]) == 16
    assert out["skip_rate"]["ratio"] is None and out["locations"] == []


async def test_lag_probe_answers_from_the_last_reading_while_a_slow_read_runs() -> None:
    now = [0.0]
    gate = threading.Event()
    reads: list[int] = []

    def read() -> list[PartitionLag]:
        reads.append(1)
        if len(reads) > 1:
            gate.wait(5)  # the broker is slow to answer the second time
        return [PartitionLag("g", "t", 0, 0, len(reads))]

    probe = LagProbe(read, ttl=5.0, clock=lambda: now[0])
    assert (await probe.report()).rows[0].end == 1
    now[0] = 10.0
    slow = asyncio.create_task(probe.report())
    await asyncio.sleep(0.05)
    quick = await asyncio.wait_for(probe.report(), timeout=1)
    assert quick.rows[0].end == 1  # the previous reading, at once
    gate.set()
    assert (await slow).rows[0].end == 2 and len(reads) == 2
