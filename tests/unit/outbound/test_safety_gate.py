"""The safety gate (pure): every row of the seed's behaviour table, DESIGN §6, normalisation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta

import pytest

from schemas.base import Channel
from services.common.settings import CommonSettings
from services.common.whitelist import parse_whitelist
from services.outbound.domain.safety_gate import (
    CAP_DEFER_MARGIN,
    GateInput,
    TenantGateView,
    Verdict,
    decide,
)
from tests.unit.outbound.support import (
    NIGHT,
    PHONE,
    gate_input,
    tenant_profile,
)

TENANT = TenantGateView(active=True, policy=tenant_profile().policy, has_postal_address=True)


def gate(**overrides: object) -> GateInput:
    """A whitelisted email lead with an SMS opt-in, in an open window; `overrides` change it."""
    return gate_input(**overrides)


# seed behaviour table ----------------------------------------------------------------------------
@pytest.mark.parametrize("channel", list(Channel))
@pytest.mark.parametrize("raw", ["", "   ", '""', "''", " , ;  "])
def test_empty_whitelist_allows_no_email_and_no_sms(channel: Channel, raw: str) -> None:
    decision = decide(gate(channel=channel, whitelist=parse_whitelist(raw)))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "whitelist_empty")


@pytest.mark.parametrize("channel", list(Channel))
def test_email_not_in_whitelist_skips_the_whole_touch_point(channel: Channel) -> None:
    decision = decide(gate(channel=channel, email="jane.doe@gmail.com"))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "not_whitelisted")
    assert not decision.whitelisted


def test_sms_without_whitelist_pass_is_blocked_even_with_a_valid_phone() -> None:
    decision = decide(gate(channel=Channel.SMS, email="customer@real.com", phone=PHONE))
    assert decision.verdict is Verdict.SKIP and decision.reason == "not_whitelisted"


@pytest.mark.parametrize("email", [None, "", "   ", '""'])
def test_a_lead_without_email_never_gets_sms(email: str | None) -> None:
    decision = decide(gate(channel=Channel.SMS, email=email, phone=PHONE))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "no_email")


def test_twilio_not_configured_disables_sms_safely() -> None:
    decision = decide(gate(channel=Channel.SMS, sms_configured=False))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "sms_disabled")
    # …and email is unaffected
    assert decide(gate(channel=Channel.EMAIL, sms_configured=False)).allowed


def test_no_sendgrid_key_disables_email_safely() -> None:
    decision = decide(gate(channel=Channel.EMAIL, email_configured=False))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "email_disabled")
    assert decide(gate(channel=Channel.SMS, email_configured=False)).allowed


@pytest.mark.parametrize("channel", list(Channel))
def test_whitelisted_lead_is_sent_on_both_channels(channel: Channel) -> None:
    decision = decide(gate(channel=channel))
    assert (decision.verdict, decision.reason, decision.whitelisted) == (
        Verdict.SEND,
        "whitelisted",
        True,
    )


# DESIGN §6 further rules ------------------------------------------------------------------------
@pytest.mark.parametrize("channel", list(Channel))
def test_suppressed_recipient_is_skipped(channel: Channel) -> None:
    decision = decide(gate(channel=channel, suppressed=True))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "suppressed")


@pytest.mark.parametrize("channel", list(Channel))
def test_outside_the_window_is_deferred_to_the_next_opening(channel: Channel) -> None:
    decision = decide(gate(channel=channel, now=NIGHT))
    assert decision.verdict is Verdict.DEFER
    # 23:00 in New York → 08:00 local the next morning = 12:00 UTC (EDT)
    assert decision.deferred_until == datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_sms_window_follows_stricter_state_rules() -> None:
    texas = TenantGateView(
        active=True,
        policy=tenant_profile(us_state="TX", timezone="America/Chicago").policy,
        has_postal_address=True,
    )
    # 08:30 in Chicago: open federally (8–21) but Texas starts at 9:00
    at = datetime(2026, 3, 10, 13, 30, tzinfo=UTC)
    decision = decide(gate(channel=Channel.SMS, tenant=texas, now=at))
    assert decision.verdict is Verdict.DEFER
    assert decision.deferred_until == datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def test_email_window_uses_location_hours() -> None:
    closed_sunday = TenantGateView(
        active=True,
        policy=tenant_profile(hours={d: (time(9), time(17)) for d in range(6)}).policy,
        has_postal_address=True,
    )
    sunday_noon = datetime(2026, 3, 15, 16, 0, tzinfo=UTC)
    decision = decide(gate(channel=Channel.EMAIL, tenant=closed_sunday, now=sunday_noon))
    assert decision.verdict is Verdict.DEFER
    assert decision.deferred_until == datetime(2026, 3, 16, 13, 0, tzinfo=UTC)  # Mon 9:00 EDT


@pytest.mark.parametrize(
    ("recent", "cap", "verdict"),
    [(0, 1, Verdict.SEND), (1, 1, Verdict.SKIP), (2, 3, Verdict.SEND), (5, 0, Verdict.SEND)],
)
def test_frequency_cap(recent: int, cap: int, verdict: Verdict) -> None:
    decision = decide(gate(recent_sends=recent, frequency_cap=cap))
    assert decision.verdict is verdict
    if verdict is Verdict.SKIP:
        assert decision.reason == "frequency_cap"


def test_frequency_cap_defers_a_campaign_step_by_its_window_instead_of_dropping_it() -> None:
    window = timedelta(hours=12)
    step = gate(recent_sends=1, frequency_cap=1, campaign_step=True, frequency_window=window)
    decision = decide(step)
    assert (decision.verdict, decision.reason) == (Verdict.DEFER, "frequency_cap")
    assert decision.deferred_until == step.now + window + CAP_DEFER_MARGIN
    assert decide(gate(recent_sends=0, campaign_step=True)).verdict is Verdict.SEND


def test_frequency_cap_does_not_skip_what_is_deferred_anyway() -> None:
    # decided again when the window opens, with the cap as it will be then
    assert decide(gate(recent_sends=3, now=NIGHT)).verdict is Verdict.DEFER


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"tenant": None}, "unknown_tenant"),
        ({"tenant": dataclasses.replace(TENANT, active=False)}, "tenant_inactive"),
        ({"channel": Channel.SMS, "phone": None}, "no_phone"),
        ({"channel": Channel.SMS, "phone": "12"}, "invalid_phone"),
        ({"tenant": dataclasses.replace(TENANT, has_postal_address=False)}, "no_postal_address"),
        ({"opted_out": True}, "lead_opted_out"),
    ],
)
def test_other_skip_reasons(overrides: dict[str, object], reason: str) -> None:
    decision = decide(gate(**overrides))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, reason)


def test_the_whitelist_is_checked_before_anything_else() -> None:
    # every other problem at once: the whitelist still decides first
    decision = decide(
        gate(
            email="stranger@real.com",
            email_configured=False,
            tenant=None,
            suppressed=True,
            now=NIGHT,
            recent_sends=9,
        )
    )
    assert decision.reason == "not_whitelisted"


def test_demo_mode_does_not_loosen_the_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEMO_MODE", "true")
    monkeypatch.setenv("LEAD_EMAIL_WHITELIST", "")
    settings = CommonSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.demo_mode is True
    decision = decide(gate(whitelist=settings.whitelist))
    assert decision.reason == "whitelist_empty"


# normalisation ----------------------------------------------------------------------------------
RAW = '"sam@example.com, Test@test.com"'


@pytest.mark.parametrize(
    "email",
    [
        "sam@example.com",
        "SAM@EXAMPLE.COM",
        "  sam@example.com  ",
        '"sam@example.com"',
        "'Sam@Example.com'",
        "test@test.com",
        "TEST@test.com",
        ' "Test@Test.Com" ',
    ],
)
def test_matching_after_trim_lowercase_and_quote_removal(email: str) -> None:
    assert decide(gate(email=email, whitelist=parse_whitelist(RAW))).allowed


@pytest.mark.parametrize(
    "email",
    [
        "sam@example.co",
        "sam@example.com.evil.com",
        "xsam@example.com",
        "sam@example",
        "sam @example.com",
        "sam@example.com,test@test.com",
        "test@test.com.",
        "@test.com",
        "example.com",
    ],
)
def test_only_exact_matches_pass(email: str) -> None:
    decision = decide(gate(email=email, whitelist=parse_whitelist(RAW)))
    assert decision.reason == "not_whitelisted"


def test_quoted_comma_list_allows_exactly_those_two() -> None:
    assert parse_whitelist(RAW) == frozenset({"sam@example.com", "test@test.com"})


@pytest.mark.parametrize(
    ("env", "email_on", "sms_on"),
    [
        ({}, False, False),
        ({"sendgrid_api_key": "  "}, False, False),  # `SENDGRID_API_KEY=` in .env is unset
        ({"sendgrid_api_key": "SG.x"}, True, False),
        ({"twilio_account_sid": "AC1", "twilio_auth_token": "t"}, False, False),  # no sender
        ({"twilio_account_sid": "AC1", "twilio_phone_number": "+12025550111"}, False, False),
        (
            {"twilio_account_sid": "AC1", "twilio_auth_token": "t", "twilio_phone_number": "+1555"},
            False,
            True,
        ),
        (
            {
                "twilio_account_sid": "AC1",
                "twilio_auth_token": "t",
                "twilio_messaging_service_sid": "MG1",
            },
            False,
            True,
        ),
    ],
)
def test_providers_count_as_configured_only_with_complete_credentials(
    env: dict[str, str], email_on: bool, sms_on: bool
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from services.outbound.bootstrap import build_senders
    from services.outbound.settings import OutboundSettings

    blank = {
        "sendgrid_api_key": None,
        "twilio_account_sid": None,
        "twilio_auth_token": None,
        "twilio_phone_number": None,
        "twilio_messaging_service_sid": None,
        "_env_file": None,
    }
    settings = OutboundSettings(**(blank | env))  # type: ignore[arg-type]
    assert (settings.email_configured, settings.sms_configured) == (email_on, sms_on)
    with ThreadPoolExecutor(1) as pool:
        senders = build_senders(settings, pool)
    assert set(senders) == {c for c, on in ((Channel.EMAIL, email_on), (Channel.SMS, sms_on)) if on}


# SMS bound to its recipient (DESIGN §6 4a) -----------------------------------------------------
@pytest.mark.parametrize(
    ("phone", "reason"),
    [
        ("+1" + "9" * 38, "invalid_phone"),  # the 39-digit number of a website form
        ("+15551234567", "invalid_phone"),  # +8 digits: the hand-written normaliser took it
        ("\u00b2\u00b2\u00b2", "invalid_phone"),
        ("+442079460958", "phone_region"),  # valid, but not in SMS_ALLOWED_REGIONS
        ("+19005550123", "phone_not_whitelisted"),  # a premium-rate number nobody listed
        ("+12025550124", "phone_not_whitelisted"),  # the neighbour of a listed number
        ("  ", "no_phone"),
    ],
)
def test_an_sms_needs_a_valid_allowed_and_listed_phone(phone: str, reason: str) -> None:
    decision = decide(gate(channel=Channel.SMS, phone=phone))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, reason)
    assert decision.recipient is None
    # email is not bound to the phone
    assert decide(gate(channel=Channel.EMAIL, phone=phone)).allowed


def test_an_empty_phone_list_means_no_sms_even_for_a_whitelisted_email() -> None:
    decision = decide(gate(channel=Channel.SMS, phone_whitelist=frozenset()))
    assert (decision.verdict, decision.reason) == (Verdict.SKIP, "phone_whitelist_empty")
    assert decide(gate(channel=Channel.EMAIL, phone_whitelist=frozenset())).allowed


def test_a_listed_phone_is_matched_exactly_after_normalisation_and_named_in_the_decision() -> None:
    for written in ("(202) 555-0123", "+1 202-555-0123", "12025550123"):
        decision = decide(gate(channel=Channel.SMS, phone=written))
        assert decision.allowed and decision.recipient == "+12025550123"
    # the email rule still comes first: a listed phone never opens SMS on its own
    denied = decide(gate(channel=Channel.SMS, email="jane.doe@gmail.com"))
    assert (denied.reason, denied.recipient) == ("not_whitelisted", None)


def test_regions_are_a_setting() -> None:
    uk = "+442079460958"
    allowed = gate(channel=Channel.SMS, phone=uk, phone_whitelist=frozenset({uk}))
    assert decide(allowed).reason == "phone_region"
    assert decide(dataclasses.replace(allowed, sms_regions=frozenset({"GB"}))).allowed
    assert decide(dataclasses.replace(allowed, sms_regions=frozenset())).reason == "phone_region"


def test_phone_settings_fail_at_start_naming_the_variable() -> None:
    from services.common.errors import ConfigError
    from services.common.settings import load_settings
    from services.outbound.settings import OutboundSettings

    with pytest.raises(ConfigError, match="LEAD_PHONE_WHITELIST"):
        load_settings(OutboundSettings, lead_phone_whitelist="+12025550123, 555-0199")
    with pytest.raises(ConfigError, match="SMS_ALLOWED_REGIONS"):
        load_settings(OutboundSettings, sms_allowed_regions="US,XX")
    ok = load_settings(OutboundSettings, lead_phone_whitelist='"+1 (202) 555-0123"')
    assert ok.phone_whitelist == {"+12025550123"} and ok.sms_regions == {"US", "CA"}
