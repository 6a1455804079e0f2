"""Schemathesis on the dashboard's operations of the admin listener's `/openapi.json`, against
the live ingest (real PostgreSQL and Kafka) as a signed-in hq operator (API token), positive and
negative cases: generated tenants and windows are a 200, 400 or 404, never a 5xx, and every 200
carries the summary's sections."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings

from services.common.settings import load_settings
from services.ingest.settings import IngestSettings
from tests.integration.ingest.test_openapi_fuzz import LiveApp
from tests.support.operators import add_account

pytestmark = pytest.mark.integration
MAX_EXAMPLES = 40


@pytest.fixture
def live_ingest(topics: object, service_env: dict[str, str]) -> Iterator[str]:
    app_settings = load_settings(
        IngestSettings,
        shopmonkey_api_base_url="http://127.0.0.1:9/v3",
        # the fuzzer's failed sign-ins must not lock its own token out (tested elsewhere)
        sign_in_max_failures_per_address=10_000,
    )
    with LiveApp(app_settings) as app:
        yield app.admin


def test_dashboard_operations_never_answer_a_server_error(
    live_ingest: str, make_tenant: Any, db_engine: Any
) -> None:
    import asyncio

    account = asyncio.run(add_account(db_engine))
    auth = {"Authorization": f"Bearer {account.token}"}
    schema = schemathesis.openapi.from_url(f"{live_ingest}/openapi.json")
    operations = [
        op
        for op in (r.ok() for r in schema.get_all_operations())
        if op.path.startswith("/dashboard")
    ]
    assert {op.path for op in operations} == {
        "/dashboard",
        "/dashboard/",
        "/dashboard/sign-in",
        "/dashboard/sign-out",
        "/dashboard/dashboard.js",
        "/dashboard/dashboard.css",
        "/dashboard/api/summary",
        "/dashboard/leads.js",
        "/dashboard/api/leads",
        "/dashboard/api/leads/{lead_id}",
        "/dashboard/api/leads/{lead_id}/actions",
    }
    statuses: dict[str, set[int]] = {}
    failures: list[str] = []
    started = time.monotonic()
    negative = schemathesis.GenerationMode.NEGATIVE
    runs = [(op, schemathesis.GenerationMode.POSITIVE) for op in operations]
    runs += [(op, negative) for op in operations if op.path.endswith("/summary")]
    for operation, mode in runs:

        @given(case=operation.as_strategy(mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            kwargs = case.as_transport_kwargs(base_url=live_ingest)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), **auth}
            response = requests.request(**kwargs, timeout=15, allow_redirects=False)
            statuses.setdefault(case.operation.path, set()).add(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.formatted_path} -> {response.status_code}")
            elif response.status_code == 200 and case.operation.path.endswith("/summary"):
                body = response.json()
                for key in ("funnel", "touchpoints", "skip_rate", "locations", "lag"):
                    assert key in body, key

        check()
    assert not failures, failures[:10]
    assert {200, 400} <= statuses["/dashboard/api/summary"] <= {200, 400, 404}
    assert statuses["/dashboard"] == {302}
    assert time.monotonic() - started < 300  # a guard against a hang, not a speed target
