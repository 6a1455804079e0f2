"""What `leadctl run` starts, decided from the environment alone (leadctl/run/demo.py), and the
LOG_FORMAT switch the supervisor relies on for one readable stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from leadctl.run.demo import DEMO_EMAIL, DEMO_PHONE, midday_zone, plan
from services.common.errors import ConfigError
from services.common.logging import JsonFormatter, TextFormatter, setup_logging


def names(environ: dict[str, str]) -> list[str]:
    return [p.name for p in plan(environ, available=lambda _: True).processes]


def test_no_credentials_starts_every_stand_in_and_whitelists_only_the_demo_address() -> None:
    p = plan({}, available=lambda _: True)
    assert [x.name for x in p.processes] == [
        "sendgrid",
        "twilio",
        "ingest",
        "poller",
        "sequencer",
        "outbound",
        "shopmonkey",
    ]
    assert (p.demo_email, p.demo_phone) == (DEMO_EMAIL, DEMO_PHONE)
    for proc in p.processes:
        assert proc.env["LEAD_EMAIL_WHITELIST"] == DEMO_EMAIL
        assert proc.env["LEAD_PHONE_WHITELIST"] == DEMO_PHONE
        assert proc.env["SENDGRID_API_BASE_URL"].startswith("http://127.0.0.1:")
        assert proc.env["TWILIO_API_BASE_URL"].startswith("http://127.0.0.1:")


def test_the_simulated_shopmonkey_has_a_multi_location_company_and_company_webhooks() -> None:
    [sim] = [p for p in plan({}, available=lambda _: True).processes if p.name == "shopmonkey"]
    argv = list(sim.argv)
    assert argv[argv.index("--companies") + 1] == "2,1"
    url = argv[argv.index("--webhook-url") + 1]
    assert url.endswith("/webhooks/shopmonkey/companies/{company_id}/order")


def test_real_credentials_are_never_combined_with_the_demo_whitelist() -> None:
    env = {"SENDGRID_API_KEY": "SG.real", "SHOPMONKEY_API_KEY": "sm"}
    p = plan(env, available=lambda _: True)
    assert "sendgrid" not in [x.name for x in p.processes]
    assert "shopmonkey" not in [x.name for x in p.processes]
    assert p.demo_email is None and p.demo_phone is None
    assert all("LEAD_EMAIL_WHITELIST" not in x.env for x in p.processes)
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in p.processes)
    assert all("SENDGRID_API_KEY" not in x.env for x in p.processes)


def test_an_operator_whitelist_is_kept_even_with_fakes() -> None:
    p = plan({"LEAD_EMAIL_WHITELIST": "me@example.com"}, available=lambda _: True)
    assert p.demo_email is None and p.demo_phone is None
    assert all("LEAD_EMAIL_WHITELIST" not in x.env for x in p.processes)
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in p.processes)
    mine = plan({"LEAD_PHONE_WHITELIST": "+12025550123"}, available=lambda _: True)
    assert mine.demo_email == DEMO_EMAIL and mine.demo_phone is None
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in mine.processes)


def test_the_demo_customers_have_the_demo_phone() -> None:
    from fakes.shopmonkey.data import World

    world = World(seed=1, tenants=1, demo_emails=(DEMO_EMAIL,), demo_phone=DEMO_PHONE)
    company = world.companies[0]
    customers = [world.add_customer(company) for _ in range(40)]
    demo = [c for c in customers if DEMO_EMAIL in str(c)]
    assert demo and all(DEMO_PHONE in str(c) for c in demo)
    assert all(DEMO_PHONE not in str(c) for c in customers if c not in demo)


def test_unbuilt_services_are_reported_not_started() -> None:
    p = plan({}, available=lambda n: n != "poller")
    assert "poller" not in [x.name for x in p.processes]
    assert any(n.startswith("poller") and "not built" in n for n in p.notes)


def test_stand_in_ports_can_be_moved() -> None:
    p = plan({"FAKE_SENDGRID_PORT": "4999"}, available=lambda _: True)
    assert p.processes[0].argv[-1] == "4999"
    assert p.processes[0].env["SENDGRID_API_BASE_URL"] == "http://127.0.0.1:4999"


@pytest.mark.parametrize("hour", range(24))
def test_the_first_demo_location_is_open_at_any_hour(hour: int) -> None:
    now = datetime(2026, 3, 8, hour, 30, tzinfo=UTC)  # a US DST change day
    local = now.astimezone(ZoneInfo(midday_zone(now)))
    assert 10 <= local.hour <= 16


def test_log_format_is_validated_and_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        setup_logging("t")
    for fmt, cls in (("json", JsonFormatter), ("text", TextFormatter)):
        monkeypatch.setenv("LOG_FORMAT", fmt)
        setup_logging("t")
        assert isinstance(logging.getLogger().handlers[0].formatter, cls)
