"""The whole pipeline through the broker's SASL_SSL listener only (SCRAM-SHA-512 over TLS, the
CA verified): the Shopmonkey simulator sends signed webhooks to `leadctl ingest`, the Faust
sequencer (aiokafka) plans the touch point, `leadctl outbound` (librdkafka) sends it to the
fake SendGrid, and the projection (librdkafka) writes the lead. Every service gets the SASL
settings and the SASL port alone, so a client that ignored them could not reach Kafka."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.common.kafka.admin import admin_client, ensure_topics
from services.common.topics import Topics
from tests.conftest import tz_at_local_hour
from tests.e2e.support import DEMO, DEMO_PHONE, Stack, new_stack
from tests.support.sasl import connection, sasl_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.fixture
def secure_stack(tmp_path: Path, service_env: dict[str, str], db_url: str) -> Any:
    sasl = sasl_env()
    kafka = connection(sasl)
    topics = Topics(service_env["KAFKA_TOPIC_PREFIX"])
    ensure_topics(kafka, partitions=4, names=topics.with_dlqs())  # created over SASL_SSL too
    stack = new_stack(tmp_path, service_env, topics, db_url, kafka)  # type: ignore[arg-type]
    stack.env.update(sasl)
    yield stack
    for p in reversed(list(stack.procs.values())):
        p.stop(10)
    admin = admin_client(kafka)
    names = [n for n in admin.list_topics(timeout=10).topics if n.startswith(topics.prefix)]
    if names:
        admin.delete_topics(names, operation_timeout=30)


def test_a_touch_point_goes_from_webhook_to_sendgrid_over_sasl_ssl(
    secure_stack: Stack, tmp_path: Path
) -> None:
    stack = secure_stack
    stack.start("sendgrid", "simulate", "sendgrid", "--port", str(stack.ports["sendgrid"]))
    stack.start("twilio", "simulate", "twilio", "--port", str(stack.ports["twilio"]))
    for name in ("ingest", "sequencer", "outbound"):
        stack.start(name)
    for name in ("ingest", "sequencer", "outbound"):
        stack.wait(lambda n=name: stack.healthy(n, "/readyz"), 120, f"{name} ready")  # type: ignore[misc]
    sim = stack.simulate_shopmonkey(
        tmp_path / "sim-state.json",
        "--tenants",
        "2",
        "--orders",
        "0",
        "--rate",
        "120",
        "--demo-emails",
        DEMO,
        "--demo-phone",  # the demo customers' consent agrees (see DEMO_PHONE)
        DEMO_PHONE,
        "--webhook-url",
        f"http://127.0.0.1:{stack.ports['ingest']}/webhooks/shopmonkey/{{tenant_id}}/order",
        "--timezone",
        tz_at_local_hour(12),  # mid-day there: the first email is due and inside its window
    )
    tenants = [c["tenant_id"] for c in sim["companies"]]

    def emailed() -> list[dict[str, Any]]:
        return [r for r in stack.requests_to("sendgrid") if r.get("accepted")]

    stack.wait(lambda: len(emailed()) > 0, 180, "an email at the fake SendGrid")
    stack.wait(
        lambda: bool(
            stack.rows(
                "SELECT 1 FROM leads WHERE tenant_id::text = ANY(%s) AND touches_sent > 0",
                tenants,
            )
        ),
        60,
        "the lead projected with its touch point",
    )
    sent = stack.rows(
        "SELECT status FROM job_executions WHERE tenant_id::text = ANY(%s) AND status = 'sent'",
        tenants,
    )
    assert sent, stack.tails()
    body = json.dumps(emailed()[0])
    assert DEMO in body  # only the whitelisted address was ever sent to
    for name in ("ingest", "sequencer", "outbound"):
        assert "refused the credentials" not in stack.procs[name].text()
        assert "event loop: uvloop" in stack.procs[name].text(), name  # as deployed
        assert "heap frozen: " in stack.procs[name].text(), name  # no full-heap GC pauses
