"""What keeps a location from sending, judged from its facts (pure)."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from services.common.domain.location_health import LocationFacts, judged, location_problems

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)

HEALTHY = LocationFacts(
    tenant_id=uuid.uuid4(),
    name="Austin",
    active=True,
    postal_address="1 Main St, Austin, TX",
    hours_days=6,
    company_id="co_a",
    company_has_api_key=True,
    poll_last_success_at=NOW - timedelta(minutes=1),
    poll_last_error=None,
    webhook_orders=4,
    poll_orders=1,
    email_disabled=0,
    sms_disabled=0,
)


def codes(facts: LocationFacts, **kw: object) -> list[str]:
    return [p.code for p in location_problems(facts, now=NOW, poll_interval=INTERVAL, **kw)]  # type: ignore[arg-type]


def test_a_location_with_everything_has_no_problem() -> None:
    assert codes(HEALTHY) == []


def test_each_missing_thing_is_named() -> None:
    cases = {
        "inactive": {"active": False},
        "no_postal_address": {"postal_address": "  "},
        "no_hours": {"hours_days": 0},
        "webhooks_failing": {"webhook_orders": 0, "poll_orders": 3},
        "poller_cursor_old": {"poll_last_success_at": NOW - timedelta(minutes=11)},
        "email_provider_not_configured": {"email_disabled": 2},
        "sms_provider_not_configured": {"sms_disabled": 1},
    }
    for code, change in cases.items():
        assert codes(dataclasses.replace(HEALTHY, **change)) == [code], code  # type: ignore[arg-type]
    no_key = dataclasses.replace(HEALTHY, company_has_api_key=False, poll_last_success_at=None)
    assert codes(no_key) == ["no_shopmonkey_key"]  # a poller without a key is not also "old"


def test_thresholds_webhooks_and_poller() -> None:
    assert codes(dataclasses.replace(HEALTHY, webhook_orders=0, poll_orders=2)) == []
    assert (
        codes(dataclasses.replace(HEALTHY, poll_last_success_at=NOW - timedelta(minutes=9))) == []
    )
    slow = timedelta(minutes=10)  # 3 intervals of 10 min: 25 min ago is still fine
    late = dataclasses.replace(HEALTHY, poll_last_success_at=NOW - timedelta(minutes=25))
    assert [p.code for p in location_problems(late, now=NOW, poll_interval=slow)] == []
    never = dataclasses.replace(HEALTHY, poll_last_success_at=None, poll_last_error="401 bad key")
    [problem] = location_problems(never, now=NOW, poll_interval=INTERVAL)
    assert "never read" in problem.text and "401 bad key" in problem.text


def test_the_default_key_serves_the_tenant_id_locations_company_only() -> None:
    a = dataclasses.replace(HEALTHY, company_has_api_key=False)
    sibling = dataclasses.replace(a, tenant_id=uuid.uuid4(), name="Austin 2")
    other = dataclasses.replace(a, tenant_id=uuid.uuid4(), name="Boston", company_id="co_b")
    out = judged(
        [a, sibling, other], now=NOW, poll_interval=INTERVAL, default_key_tenant=a.tenant_id
    )
    assert [[p["code"] for p in loc["problems"]] for loc in out] == [[], [], ["no_shopmonkey_key"]]
