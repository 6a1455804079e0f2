"""`preferredContactMethod` orders the channels, it never leaves a customer with nothing
(`services.common.domain.consent`): a touch on one channel is skipped for the preference only
when the customer prefers the other channel and the source's consent allows a message there."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import Channel
from services.common.domain.consent import (
    CONTACT_PREFERENCE,
    ConsentRecord,
    consent_refusal,
    merge,
    preferred_channel,
    usable,
)

AT = datetime(2026, 3, 1, tzinfo=UTC)
PHONE = "+12025550123"
EMAIL_ADDRESS = "sam@example.com"
SMS = ConsentRecord(Channel.SMS, PHONE, "shopmonkey", AT, "shopmonkey:customer:c1:1")
EMAIL = ConsentRecord(Channel.EMAIL, EMAIL_ADDRESS, "shopmonkey", AT, "shopmonkey:customer:c1:1")
SMS_OK = dataclasses.replace(SMS, opted_in=True, line_type="mobile")
OTHER = {Channel.SMS: Channel.EMAIL, Channel.EMAIL: Channel.SMS}


@pytest.mark.parametrize(
    ("sms", "expected"),
    [
        (SMS_OK, CONTACT_PREFERENCE),  # SMS usable: the email gives way to it
        (dataclasses.replace(SMS, marketing_opt_in=True), CONTACT_PREFERENCE),
        (None, None),  # no SMS consent recorded: the email goes
        (SMS, None),  # a record that says nothing is no consent
        (dataclasses.replace(SMS_OK, opted_in=False), None),  # SMS refused
        (dataclasses.replace(SMS_OK, marketing_opt_in=False), None),
        (dataclasses.replace(SMS_OK, line_type="landline"), None),  # texts cannot reach it
    ],
)
def test_an_email_gives_way_to_sms_only_when_sms_may_go(
    sms: ConsentRecord | None, expected: str | None
) -> None:
    prefers_sms = dataclasses.replace(EMAIL, opted_in=True, preferred="sms")
    assert consent_refusal(Channel.EMAIL, prefers_sms, sms) == expected


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        (None, CONTACT_PREFERENCE),  # no email record is no refusal: email is usable
        (EMAIL, CONTACT_PREFERENCE),
        (dataclasses.replace(EMAIL, opted_in=True), CONTACT_PREFERENCE),
        (dataclasses.replace(EMAIL, opted_in=False), None),  # unsubscribed: the SMS goes
    ],
)
def test_an_sms_gives_way_to_email_only_when_email_may_go(
    email: ConsentRecord | None, expected: str | None
) -> None:
    prefers_email = dataclasses.replace(SMS_OK, preferred="email")
    assert consent_refusal(Channel.SMS, prefers_email, email) == expected


def test_a_preference_for_the_channel_itself_or_none_skips_nothing() -> None:
    assert consent_refusal(Channel.SMS, dataclasses.replace(SMS_OK, preferred="sms"), EMAIL) is None
    assert consent_refusal(Channel.SMS, SMS_OK, EMAIL) is None
    prefers_email = dataclasses.replace(EMAIL, preferred="email")
    assert consent_refusal(Channel.EMAIL, prefers_email, SMS_OK) is None
    assert consent_refusal(Channel.EMAIL, EMAIL, SMS_OK) is None


def test_records_that_contradict_each_other_order_nothing() -> None:
    """The address's record asks for SMS, the phone's for email (changes of different times):
    neither channel gives way, so the customer is not left with nothing."""
    prefers_sms = dataclasses.replace(EMAIL, preferred="sms")
    prefers_email = dataclasses.replace(SMS_OK, preferred="email")
    assert consent_refusal(Channel.EMAIL, prefers_sms, prefers_email) is None
    assert consent_refusal(Channel.SMS, prefers_email, prefers_sms) is None


def test_the_other_reasons_come_before_the_preference() -> None:
    landline = dataclasses.replace(SMS_OK, line_type="landline", preferred="email")
    assert consent_refusal(Channel.SMS, landline, None) == "landline"
    unsubscribed = dataclasses.replace(EMAIL, opted_in=False, preferred="sms")
    assert consent_refusal(Channel.EMAIL, unsubscribed, SMS_OK) == "email_unsubscribed"


FLAG = st.sampled_from([None, True, False])


def records(channel: Channel, contact: str) -> st.SearchStrategy[ConsentRecord | None]:
    return st.one_of(
        st.none(),
        st.builds(
            lambda opted, marketing, preferred, line: ConsentRecord(
                channel,
                contact,
                "shopmonkey",
                AT,
                "k",
                opted_in=opted,
                marketing_opt_in=marketing,
                preferred=preferred,
                line_type=line if channel is Channel.SMS else None,
            ),
            FLAG,
            FLAG,
            st.sampled_from([None, "sms", "email"]),
            st.sampled_from([None, "mobile", "landline", "voip"]),
        ),
    )


@settings(max_examples=1000, deadline=None)
@given(records(Channel.EMAIL, EMAIL_ADDRESS), records(Channel.SMS, PHONE))
def test_a_preference_never_leaves_a_customer_with_nothing(
    email: ConsentRecord | None, sms: ConsentRecord | None
) -> None:
    """Over any consent the source may hold for a customer's address and phone:
    - a touch skipped for the preference has the other channel open by consent (no refusal
      there at all), so the two channels never both give way;
    - the preference never lets through what consent refuses: a touch it does not skip is
      decided as without it, and one allowed without it is allowed or skipped for it."""
    held = {Channel.EMAIL: email, Channel.SMS: sms}
    for channel in Channel:
        record, other = held[channel], held[OTHER[channel]]
        refusal = consent_refusal(channel, record, other)
        if refusal == CONTACT_PREFERENCE:
            assert usable(OTHER[channel], other)
            assert consent_refusal(OTHER[channel], other, record) is None
        no_preference = dataclasses.replace(record, preferred=None) if record else None
        without = consent_refusal(channel, no_preference, other)
        if refusal != CONTACT_PREFERENCE:
            assert without == refusal
        if without is None:
            assert refusal in (None, CONTACT_PREFERENCE)
    both = [consent_refusal(c, held[c], held[OTHER[c]]) for c in Channel]
    assert both != [CONTACT_PREFERENCE, CONTACT_PREFERENCE]


def test_all_is_said_and_lifts_an_earlier_preference() -> None:
    """A customer who switches from SMS to `All` in Shopmonkey no longer prefers SMS at the
    next touch (absence keeps what was said; `All` is said)."""
    assert [preferred_channel(v) for v in ("SMS", " email ", "All", "Fax", None)] == [
        "sms",
        "email",
        "all",
        None,
        None,
    ]
    before = dataclasses.replace(EMAIL, preferred="sms")
    later = dataclasses.replace(EMAIL, changed_at=AT + timedelta(minutes=1))
    assert merge(before, later).preferred == "sms"  # a record that does not say keeps it
    said_all = dataclasses.replace(later, preferred="all")
    assert merge(before, said_all).preferred == "all"
    assert consent_refusal(Channel.EMAIL, merge(before, said_all), SMS_OK) is None
    assert consent_refusal(Channel.EMAIL, before, SMS_OK) == CONTACT_PREFERENCE
