"""Consent out of Shopmonkey customer records and website forms (pure), and the merge rule the
store applies (its SQL twin is held to the same cases in tests/integration/ingest)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.base import Channel
from services.common.domain.consent import ConsentRecord, from_evidence, merge
from services.ingest.domain.consent import consent_of_customer, consent_of_order
from services.ingest.domain.website_form import WebsiteLeadForm, form_consent
from services.ingest.errors import InvalidPayload
from tests.support.shopmonkey_payloads import CUSTOMER_RECORD

NOW = datetime(2026, 5, 3, tzinfo=UTC)


def by_contact(records: list[ConsentRecord]) -> dict[str, ConsentRecord]:
    return {r.contact: r for r in records}


def test_every_field_of_the_customer_record_is_kept() -> None:
    record = {
        **CUSTOMER_RECORD,
        "marketingOptIn": True,
        "preferredContactMethod": "Email",
        "phoneNumbers": [
            {"number": "+1 (202) 555-0100", "type": "Landline", "optIn": False},
            {
                "number": "+12025550123",
                "type": "Mobile",
                "optIn": True,
                "optInVerifiedDate": "2026-04-02T10:00:00Z",
            },
        ],
    }
    got = by_contact(consent_of_customer(record, event_key="k", now=NOW))
    email = got["jane.smith@example.com"]
    assert (email.channel, email.opted_in, email.marketing_opt_in) == (Channel.EMAIL, True, True)
    assert email.preferred == "email" and email.customer_id == CUSTOMER_RECORD["id"]
    assert got["old.jane@example.com"].opted_in is None  # absent: unknown
    landline = got["+12025550100"]
    assert (landline.channel, landline.line_type, landline.opted_in) == (
        Channel.SMS,
        "landline",
        False,
    )
    mobile = got["+12025550123"]
    assert mobile.opted_in is True and mobile.line_type == "mobile"
    assert mobile.verified_at == datetime(2026, 4, 2, 10, tzinfo=UTC)
    assert mobile.changed_at == datetime(2026, 5, 2, 9, 30, 0, 250000, tzinfo=UTC)
    assert mobile.source == "shopmonkey" and mobile.event_key == "k"


@pytest.mark.parametrize(
    "record",
    [
        {"id": "c", "phoneNumbers": [{"number": "+12025550123"}]},  # fields not in v3 anymore
        {"id": "c", "phoneNumbers": [{"number": "+12025550123", "optIn": "yes"}]},  # not a bool
        {"id": "c", "marketingOptIn": "true", "phoneNumbers": [{"number": "+12025550123"}]},
    ],
)
def test_absent_or_strange_flags_are_unknown_never_consent(record: dict[str, Any]) -> None:
    (phone,) = consent_of_customer(record, event_key="k", now=NOW)
    assert (phone.opted_in, phone.marketing_opt_in) == (None, None)
    assert phone.changed_at == NOW  # no change time in the record: when we saw it


def test_the_same_number_twice_keeps_the_stricter_answer() -> None:
    record = {
        "id": "c",
        "phoneNumbers": [
            {"number": "+12025550123", "optIn": True, "type": "Mobile"},
            {"number": "(202) 555-0123", "optIn": False, "type": "Landline"},
            {"number": "not a number", "optIn": True},
            "junk",
        ],
        "emails": [{"email": "no-at-sign"}, {"email": "x" * 400 + "@e.com"}],
    }
    (phone,) = consent_of_customer(record, event_key="k", now=NOW)
    assert (phone.opted_in, phone.line_type) == (False, "landline")


def test_bounded_entries_and_an_order_without_customer() -> None:
    many = {"id": "c", "emails": [{"email": f"a{i}@e.com"} for i in range(500)]}
    assert len(consent_of_customer(many, event_key="k", now=NOW)) == 20
    assert consent_of_order({"id": "o"}, event_key="k", now=NOW) == []
    embedded = {"id": "o", "customer": {"id": "c", "emails": [{"email": "A@E.com"}]}}
    assert [r.contact for r in consent_of_order(embedded, event_key="k", now=NOW)] == ["a@e.com"]


AT = datetime(2026, 1, 1, tzinfo=UTC)
BASE = ConsentRecord(Channel.SMS, "+12025550123", "shopmonkey", AT, "k1")


def test_merge_older_changes_nothing_absence_lifts_no_refusal() -> None:
    refused = dataclasses.replace(BASE, opted_in=False, line_type="landline", preferred="email")
    silent = dataclasses.replace(BASE, changed_at=AT + timedelta(hours=1), event_key="k2")
    kept = merge(refused, silent)
    assert (kept.opted_in, kept.line_type, kept.preferred) == (False, "landline", "email")
    assert merge(kept, dataclasses.replace(BASE, opted_in=True)) == kept  # older: nothing
    newer_yes = dataclasses.replace(silent, opted_in=True, line_type="mobile")
    assert merge(kept, newer_yes).opted_in is True
    granted = dataclasses.replace(BASE, opted_in=True, marketing_opt_in=True)
    assert merge(granted, silent).opted_in is None  # absence after a True: no consent
    assert from_evidence(kept.evidence()) == kept


def form(**extra: Any) -> WebsiteLeadForm:
    return WebsiteLeadForm.parse(
        {"submissionId": "s1", "email": "Sam@Example.com", "phone": "+12025550123", **extra}
    )


def test_a_form_keeps_explicit_answers_with_their_evidence() -> None:
    f = form(
        consentSms=True,
        consentEmail=False,
        consentTextVersion="2026-03-v2",
        consentedAt="2026-05-02T23:59:00-04:00",
    )
    got = by_contact(form_consent(f, event_key="website:t:s1", now=NOW))
    sms, email = got["+12025550123"], got["sam@example.com"]
    assert (sms.opted_in, sms.source, sms.text_version) == (True, "website", "2026-03-v2")
    assert sms.consented_at == datetime(2026, 5, 3, 3, 59, tzinfo=UTC)
    assert sms.changed_at == NOW  # our receipt time orders it, not the visitor's clock
    assert email.opted_in is False
    assert form_consent(form(), event_key="k", now=NOW) == []  # not asked: nothing recorded


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"consentSms": True}, "consentTextVersion and consentedAt are required"),
        (
            {"consentSms": True, "consentTextVersion": "v1", "consentedAt": "2999-01-01T00:00:00Z"},
            "in the future",
        ),
        ({"consentSms": "yes", "consentTextVersion": "v1"}, "consentSms"),
        (
            {"consentSms": True, "consentTextVersion": "v1", "consentedAt": "2026-05-01T10:00"},
            "consentedAt",
        ),  # no offset: whose time?
        ({"consentSms": True, "consentTextVersion": "v" * 51}, "consentTextVersion"),
    ],
)
def test_a_form_with_incomplete_or_forged_consent_is_refused(
    extra: dict[str, Any], why: str
) -> None:
    with pytest.raises(InvalidPayload, match=why):
        form(**extra)
