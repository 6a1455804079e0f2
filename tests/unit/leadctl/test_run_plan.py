"""What `leadctl run` starts, decided from the environment alone (leadctl/run/demo.py), and the
LOG_FORMAT switch the supervisor relies on for one readable stream."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from leadctl.run.demo import DEMO_PHONES, DemoContacts, midday_zone, plan
from services.common.errors import ConfigError
from services.common.logging import JsonFormatter, TextFormatter, setup_logging


def names(environ: dict[str, str]) -> list[str]:
    return [p.name for p in plan(environ, available=lambda _: True).processes]


def test_no_credentials_starts_every_stand_in_and_whitelists_only_the_demo_address() -> None:
    demo = DemoContacts.for_run("c0ffee")
    p = plan({}, available=lambda _: True, demo=demo)
    assert [x.name for x in p.processes] == [
        "sendgrid",
        "twilio",
        "ingest",
        "poller",
        "sequencer",
        "outbound",
        "shopmonkey",
    ]
    assert (p.demo_emails, p.demo_phone) == (demo.emails, demo.phone)
    for proc in p.processes:
        assert proc.env["LEAD_EMAIL_WHITELIST"] == ",".join(demo.emails)
        assert proc.env["LEAD_PHONE_WHITELIST"] == demo.phone
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
    assert p.demo_emails == () and p.demo_phone is None
    assert all("LEAD_EMAIL_WHITELIST" not in x.env for x in p.processes)
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in p.processes)
    assert all("SENDGRID_API_KEY" not in x.env for x in p.processes)


def test_an_operator_whitelist_is_kept_even_with_fakes() -> None:
    p = plan({"LEAD_EMAIL_WHITELIST": "me@example.com"}, available=lambda _: True)
    assert p.demo_emails == () and p.demo_phone is None
    assert all("LEAD_EMAIL_WHITELIST" not in x.env for x in p.processes)
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in p.processes)
    mine = plan({"LEAD_PHONE_WHITELIST": "+12025550123"}, available=lambda _: True)
    assert len(mine.demo_emails) == 2 and mine.demo_phone is None
    assert all("LEAD_PHONE_WHITELIST" not in x.env for x in mine.processes)


def test_the_demo_customers_have_the_demo_phone() -> None:
    from fakes.shopmonkey.data import World

    phone = DEMO_PHONES[0]
    world = World(seed=1, tenants=1, demo_emails=("demo.lead+x@example.com",), demo_phone=phone)
    company = world.companies[0]
    customers = [world.add_customer(company) for _ in range(40)]
    demo = [c for c in customers if "demo.lead+x@example.com" in str(c)]
    assert demo and all(phone in str(c) for c in demo)
    assert all(phone not in str(c) for c in customers if c not in demo)


def test_the_gate_lets_the_demo_customers_sms_and_email_go() -> None:
    """Every demo customer's consent, as ingest reads it from the simulator's record, lets both
    channels through the gate (a per-run number, not only the first)."""
    from fakes.shopmonkey.data import World
    from schemas.base import Channel
    from services.common.domain.consent import consent_refusal
    from services.ingest.domain.consent import consent_of_customer

    for phone in (DEMO_PHONES[0], DEMO_PHONES[37]):
        world = World(seed=3, tenants=1, demo_emails=("demo.lead+y@example.com",), demo_phone=phone)
        company = world.companies[0]
        demo = [
            c
            for c in (world.add_customer(company) for _ in range(60))
            if c["phoneNumbers"][0]["number"] == phone
        ]
        assert demo
        for customer in demo:
            held = {
                r.channel: r
                for r in consent_of_customer(customer, event_key="k", now=datetime.now(UTC))
            }
            assert held[Channel.SMS].contact == phone
            for channel, other in ((Channel.SMS, Channel.EMAIL), (Channel.EMAIL, Channel.SMS)):
                assert consent_refusal(channel, held[channel], held[other]) is None, customer


def test_each_run_has_demo_addresses_of_its_own_exactly_whitelisted() -> None:
    """A second run within a day must not be all `frequency_cap` skips: new addresses, the
    simulator told to make new customers and orders (same companies and locations)."""
    first, second = DemoContacts.for_run(), DemoContacts.for_run()
    assert first.run != second.run and not set(first.emails) & set(second.emails)
    for demo in (first, second):
        assert all(e.startswith(f"demo.lead+{demo.run}") for e in demo.emails)
        p = plan({}, available=lambda _: True, demo=demo)
        [sim] = [x for x in p.processes if x.name == "shopmonkey"]
        argv = list(sim.argv)
        assert argv[argv.index("--demo-emails") + 1].split(",") == list(demo.emails)
        assert argv[argv.index("--demo-phone") + 1] == demo.phone
        assert sim.env["LEAD_EMAIL_WHITELIST"].split(",") == list(demo.emails)
    seeds = {
        list(x.argv)[list(x.argv).index("--run-seed") + 1]
        for demo in (first, second)
        for x in plan({}, available=lambda _: True, demo=demo).processes
        if x.name == "shopmonkey"
    }
    assert len(seeds) == 2


def test_a_run_seed_gives_new_orders_at_the_same_locations() -> None:
    from fakes.shopmonkey.data import World

    def world(run_seed: int | None) -> tuple[list[object], list[str]]:
        w = World(seed=1, layout=(2, 1), run_seed=run_seed)
        order = w.create_order(w.companies[0], location=w.locations[0])
        ids = [(loc.tenant_id, loc.location_id, loc.company.api_key) for loc in w.locations]
        return ids, [order["id"]]  # type: ignore[list-item]

    (ids_a, orders_a), (ids_b, orders_b) = world(1), world(2)
    assert ids_a == ids_b == world(None)[0]
    assert orders_a != orders_b and world(1)[1] == orders_a


def test_the_demo_number_avoids_numbers_sent_to_within_the_day() -> None:
    demo = DemoContacts.for_run("abc123")
    assert demo.phone in DEMO_PHONES
    again = DemoContacts.for_run("abc123", used_phones={demo.phone})
    assert again.phone != demo.phone and again.phone in DEMO_PHONES


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
