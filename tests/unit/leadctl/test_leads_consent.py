"""`leads show` names the source consent behind each decision, contacts masked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from click.testing import CliRunner

from leadctl.leads.render import print_report
from services.common.lead_report import Masker, consent_summary, job_json

CONSENT = {
    "channel": "sms",
    "contact": "+12025550123",
    "source": "shopmonkey",
    "opted_in": False,
    "marketing_opt_in": True,
    "preferred": "email",
    "line_type": "mobile",
    "text_version": None,
}
JOB: dict[str, Any] = {
    "command_id": uuid.uuid4(),
    "step_index": 1,
    "channel": "sms",
    "template": "estimate_reminder",
    "recipient": "+12025550123",
    "status": "skipped",
    "reason": "sms_no_consent",
    "provider": None,
    "provider_message_id": None,
    "delivery_status": None,
    "delivery_error": None,
    "delivery_updated_at": None,
    "record_only": False,
    "attempts": 1,
    "due_at": None,
    "deferred_until": None,
    "claimed_at": datetime(2026, 5, 1, tzinfo=UTC),
    "decided_at": datetime(2026, 5, 1, tzinfo=UTC),
    "consent": CONSENT,
}
MASK = Masker(frozenset(), lead_whitelisted=False)


def test_the_summary_says_what_the_source_said() -> None:
    assert consent_summary(CONSENT) == "shopmonkey optIn=no marketing=yes prefers=email mobile"
    assert consent_summary(None) == "none recorded"
    form = {"channel": "email", "source": "website", "opted_in": True, "text_version": "v2"}
    assert consent_summary(form) == "website subscribed=yes marketing=? text v2"


def test_json_and_table_show_it_with_the_contact_masked() -> None:
    out = job_json(JOB, MASK)
    assert out["consent"]["opted_in"] is False
    assert out["consent"]["contact"] != "+12025550123"  # masked like the recipient

    def report() -> None:
        print_report(
            lead_id=uuid.uuid4(),
            lead=None,
            jobs=[JOB],
            scan=None,
            timeline=[],
            since=datetime(2026, 5, 1, tzinfo=UTC),
            mask=MASK,
        )

    import click

    text = CliRunner().invoke(click.command()(report)).output
    assert "CONSENT" in text and "optIn=no" in text and "sms_no_consent" in text
    assert "+12025550123" not in text
