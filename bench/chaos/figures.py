"""What a chaos scenario is judged by, counted after the pipeline drained:

- webhooks answered 2xx vs their records in Kafka (`lost_webhooks` = 2xx without a record);
- orders answered 2xx vs leads in PostgreSQL (`lost_leads` = a 2xx lead id with no row);
- provider requests per command (`duplicate_sends` = requests beyond the first per
  command_id), and leads whose first touch point never reached the provider;
- 503s answered (and webhooks that never got a 2xx);
- end-to-end latency (first webhook attempt → provider request): its p99 before the fault, and
  the seconds from the fault until it is back under that p99 for good.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from datetime import datetime
from typing import Any

import psycopg
from confluent_kafka import Consumer, TopicPartition

from bench.chaos.load import Webhook
from bench.chaos.pipeline import Pipeline

#: Webhooks are grouped by the second they were first sent; the latency counts as recovered
#: once this many consecutive groups have their p99 under the baseline p99.
STABLE_SECONDS = 5


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def read_topic(bootstrap: str, topic: str) -> list[tuple[dict[str, Any], float]]:
    """Every record of `topic` (JSON value, broker timestamp in epoch seconds)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "chaos-count", "enable.auto.commit": False}
    )
    try:
        parts = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in parts
        }
        consumer.assign([TopicPartition(topic, p, 0) for p in parts])
        out: list[tuple[dict[str, Any], float]] = []
        done: set[int] = {p for p, end in ends.items() if end == 0}
        while len(done) < len(parts):
            for msg in consumer.consume(1000, timeout=1.0):
                if msg.error() is not None:
                    continue
                out.append((json.loads(msg.value()), msg.timestamp()[1] / 1000))
                if msg.offset() + 1 >= ends[msg.partition()]:
                    done.add(msg.partition())
        return out
    finally:
        consumer.close()


def _command_of(payload: Any) -> tuple[str | None, str | None]:
    """(command_id, lead_id) of a SendGrid v3 mail/send body (custom_args, anywhere)."""
    text = json.dumps(payload)
    found = {}
    for key in ("command_id", "lead_id"):
        marker = f'"{key}": "'
        at = text.find(marker)
        if at >= 0:
            found[key] = text[at + len(marker) : text.index('"', at + len(marker))]
    return found.get("command_id"), found.get("lead_id")


def count(
    pipeline: Pipeline, hooks: list[Webhook], answered_503: int, fault_at: float, since: float
) -> dict[str, Any]:
    """The figures of one run; `fault_at`/`since`: epoch seconds of the fault and of the start
    of the window the latency baseline is taken from."""
    ok = [h for h in hooks if h.ok_at is not None]
    events = read_topic(pipeline.kafka, pipeline.topics.order_events)
    in_kafka = {value["event_id"] for value, _ in events}
    commands = read_topic(pipeline.kafka, pipeline.topics.touchpoint_commands)
    lost_webhooks = [h.event_id for h in ok if h.event_id not in in_kafka]
    tenants = [t.tenant_id for t in pipeline.tenants]
    with psycopg.connect(pipeline.db_url) as conn:
        leads = {
            str(r[0])
            for r in conn.execute(
                "SELECT lead_id FROM leads WHERE tenant_id::text = ANY(%s)", (tenants,)
            )
        }
        ledger = dict(
            conn.execute(
                "SELECT status, count(*) FROM job_executions WHERE tenant_id::text = ANY(%s) "
                "GROUP BY status",
                (tenants,),
            ).fetchall()
        )
    lost_leads = [h.lead_id for h in ok if h.lead_id not in leads]
    sends: Counter[str] = Counter()
    first_send: dict[str, float] = {}
    for request in pipeline.provider_requests():
        if request["method"] != "POST" or not request["path"].endswith("/mail/send"):
            continue
        command_id, lead_id = _command_of(request["payload"])
        if command_id is None:
            continue
        sends[command_id] += 1
        at = datetime.fromisoformat(request["at"]).timestamp()
        if lead_id is not None and at < first_send.get(lead_id, float("inf")):
            first_send[lead_id] = at
    latency = {h.lead_id: first_send[h.lead_id] - h.first_at for h in ok if h.lead_id in first_send}
    return {
        "webhooks_sent": len(hooks),
        "webhooks_2xx": len(ok),
        "webhooks_never_2xx": len(hooks) - len(ok),
        "answered_503": answered_503,
        "records_in_kafka": len(in_kafka),
        "lost_webhooks": len(lost_webhooks),
        "lost_webhook_examples": lost_webhooks[:5],
        "leads_in_postgres": len(leads),
        "lost_leads": len(lost_leads),
        "provider_requests": sum(sends.values()),
        "commands_sent": len(sends),
        "duplicate_sends": sum(n - 1 for n in sends.values()),
        "leads_without_send": sum(1 for h in ok if h.lead_id not in first_send),
        "leads_without_command": len({h.lead_id for h in ok} - {v["lead_id"] for v, _ in commands}),
        "ledger": {str(k): int(v) for k, v in ledger.items()},
        **latency_figures(ok, latency, fault_at, since),
        **stage_figures(ok, events, commands, first_send, since, fault_at),
    }


def stage_figures(
    ok: list[Webhook],
    events: list[tuple[dict[str, Any], float]],
    commands: list[tuple[dict[str, Any], float]],
    first_send: dict[str, float],
    since: float,
    fault_at: float,
) -> dict[str, Any]:
    """Where the end-to-end time goes before the fault (p50/p99 ms): webhook answered,
    order event in Kafka → first command in Kafka (sequencer), command → provider (outbound)."""
    event_at = {v["lead_id"]: ts for v, ts in events}
    command_at: dict[str, float] = {}
    for value, ts in commands:
        command_at[value["lead_id"]] = min(ts, command_at.get(value["lead_id"], ts))
    window = [h for h in ok if since <= h.first_at < fault_at and h.lead_id]

    def stat(values: list[float]) -> list[float]:
        if not values:
            return []
        return [round(statistics.median(values) * 1000, 1), round(_p99(values) * 1000, 1)]

    return {
        "stage_ms_p50_p99": {
            "webhook_answer": stat([h.ok_at - h.first_at for h in window if h.ok_at]),
            "event_to_command": stat(
                [
                    command_at[h.lead_id] - event_at[h.lead_id]
                    for h in window
                    if h.lead_id in command_at and h.lead_id in event_at
                ]
            ),
            "command_to_provider": stat(
                [
                    first_send[h.lead_id] - command_at[h.lead_id]
                    for h in window
                    if h.lead_id in first_send and h.lead_id in command_at
                ]
            ),
        }
    }


def latency_figures(
    ok: list[Webhook], latency: dict[str | None, float], fault_at: float, since: float
) -> dict[str, Any]:
    before = [
        latency[h.lead_id] for h in ok if since <= h.first_at < fault_at and h.lead_id in latency
    ]
    baseline = _p99(before)
    by_second: dict[int, list[float]] = {}
    for h in ok:
        if h.first_at >= fault_at and h.lead_id in latency:
            by_second.setdefault(int(h.first_at - fault_at), []).append(latency[h.lead_id])
    recovered = None
    streak = 0
    for second in range(max(by_second, default=-1) + 1):
        values = by_second.get(second, [])
        if values and _p99(values) <= baseline:
            streak += 1
            if streak >= STABLE_SECONDS:
                recovered = second - STABLE_SECONDS + 1
                break
        else:
            streak = 0
    after = [v for vs in by_second.values() for v in vs]
    return {
        "e2e_p99_before_ms": round(baseline * 1000, 1),
        "e2e_p50_before_ms": round(statistics.median(before) * 1000, 1) if before else None,
        "e2e_max_after_fault_ms": round(max(after) * 1000, 1) if after else None,
        "seconds_until_p99_recovered": recovered,
    }
