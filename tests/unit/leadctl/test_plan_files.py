"""`leadctl plans set|diff` read a plan file: every kind of error names its place (the file's
line for YAML, the step and field for the plan), templates must exist for every channel a
step may take, and a valid file comes out normalised (every field written out)."""

from __future__ import annotations

from typing import Any

import pytest

from leadctl.plans.validate import KINDS, PlanFileError, load_yaml, normalised, to_yaml
from services.outbound.adapters.templates import packaged_templates
from services.sequencer.domain.campaigns import (
    DEFAULT_CAMPAIGNS,
    Campaign,
    campaign_document,
    parse_campaign,
)
from services.sequencer.domain.plan import DEFAULT_PLAN, parse_plan, plan_document


def step(after: int, channel: str, template: str) -> dict[str, Any]:
    return {"after_minutes": after, "channel": channel, "template": template}


def nurture(*steps: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"steps": list(steps), "lost_after_minutes": 20160, **more}


def error(kind: str, raw: Any) -> str:
    with pytest.raises(PlanFileError) as caught:
        normalised(kind, raw)
    return str(caught.value)


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        # the document itself
        ("nurture", None, "nurture: the plan must be a mapping of its fields, not empty"),
        ("review", ["a"], "review: the plan must be a mapping of its fields, not a list"),
        ("nurture", {"steps": []}, "nurture.steps: List should have at least 1 item"),
        ("nurture", nurture(step(0, "email", "nurture_email_welcome"), colour="red"),
         "nurture.colour: Extra inputs are not permitted"),
        # channels
        ("nurture", nurture(step(0, "fax", "nurture_email_welcome")),
         "nurture.steps.0.channel: 'fax' is no channel here: one of email, sms"),
        ("nurture", nurture(step(0, "preferred", "review_request")),
         "nurture.steps.0.channel: 'preferred' is no channel here: one of email, sms"),
        ("declined", {"steps": [step(60, "pigeon", "declined_email_first")]},
         "declined.steps.0.channel: 'pigeon' is no channel here: one of email, sms, preferred"),
        # offsets
        ("nurture", nurture(step(60, "email", "nurture_email_welcome"),
                            step(30, "sms", "nurture_sms_followup")),
         "nurture.steps.1.after_minutes: 30 comes before the previous step's 60"),
        ("nurture", nurture(step(-5, "email", "nurture_email_welcome")),
         "nurture.steps.0.after_minutes: -5: counted from the lead, it must not be negative"),
        ("review", {"steps": [step(-5, "email", "review_request")]},
         "review.steps.0.after_minutes: -5: counted from the trigger"),
        ("appointment", {"steps": [step(60, "sms", "appointment_reminder")]},
         "appointment.steps.0.after_minutes: 60: a reminder goes before the appointment"),
        ("nurture", nurture(step(0, "email", "nurture_email_welcome"), lost_after_minutes=0),
         "nurture.lost_after_minutes: Input should be greater than or equal to 1"),
        ("nurture", nurture(step(600, "email", "nurture_email_welcome"), lost_after_minutes=60),
         "nurture.lost_after_minutes: 60 precedes the last step (600)"),
        ("declined", {"steps": [step(10**7, "email", "declined_email_first")]},
         "declined.steps.0.after_minutes: Input should be less than or equal to 527040"),
        # limits
        ("nurture", nurture(step(0, "email", "nurture_email_welcome"), min_gap_minutes=-1),
         "nurture.min_gap_minutes: Input should be greater than or equal to 0"),
        ("review", {"max_late_minutes": 0}, "review.max_late_minutes: Input should be greater"),
        ("review", {"enabled": "maybe"}, "review.enabled: Input should be a valid boolean"),
        # templates, for each channel a step may take
        ("nurture", nurture(step(0, "email", "nurture_sms_followup")),
         "nurture.steps.0.template: no email template 'nurture_sms_followup' in "
         "services/outbound/templates: missing email/nurture_sms_followup.subject.j2"),
        ("nurture", nurture(step(0, "sms", "nurture_email_welcome")),
         "nurture.steps.0.template: no sms template 'nurture_email_welcome'"),
        ("review", {"steps": [step(60, "preferred", "declined_email_first")]},
         "review.steps.0.template: no sms template 'declined_email_first' in "
         "services/outbound/templates (a preferred step may go by email or SMS)"),
        ("declined", {"steps": [step(60, "email", "Declined")]},
         "declined.steps.0.template: String should match pattern"),
        ("nurture", nurture(step(0, "email", "Nurture.Welcome")),
         "nurture.steps.0.template: 'Nurture.Welcome' is no template name"),
    ],
)  # fmt: skip
def test_each_kind_of_error_names_its_place(kind: str, raw: Any, expected: str) -> None:
    assert error(kind, raw).startswith(expected) or expected in error(kind, raw), error(kind, raw)


def test_a_yaml_syntax_error_names_its_line() -> None:
    with pytest.raises(PlanFileError, match=r"^line 3, column 1: not valid YAML"):
        load_yaml("steps:\n  - {after_minutes: 1, channel: email\n")


def test_an_unknown_campaign_is_refused() -> None:
    assert "unknown campaign 'reviews'" in error("reviews", {})


def test_a_valid_file_comes_out_normalised_every_field_written_out() -> None:
    raw = load_yaml("enabled: true\nsteps:\n  - {after_minutes: 60, template: review_request}\n")
    document = normalised("review", raw)
    assert document == {
        "enabled": True,
        "steps": [step(60, "preferred", "review_request")],
        "max_late_minutes": 24 * 60,
    }
    assert parse_campaign(Campaign.REVIEW, document).steps[0].channel is None
    # `enabled: true` alone: the default plan, written out (a later default change keeps it)
    assert normalised("declined", {"enabled": True}) == campaign_document(
        DEFAULT_CAMPAIGNS.declined
    )
    assert load_yaml(to_yaml(document)) == document


def test_every_default_plan_is_valid_and_reads_back_the_same() -> None:
    """The defaults name templates that exist on every channel their steps may take."""
    assert normalised("nurture", plan_document(DEFAULT_PLAN)) == plan_document(DEFAULT_PLAN)
    assert parse_plan(plan_document(DEFAULT_PLAN)) == DEFAULT_PLAN
    for campaign in Campaign:
        document = campaign_document(DEFAULT_CAMPAIGNS.of(campaign))
        assert normalised(campaign.value, document) == document
    assert set(KINDS) == {"nurture", "declined", "review", "appointment"}


def test_templates_are_checked_against_the_packaged_files() -> None:
    templates = packaged_templates()
    assert "sms/review_request.txt.j2" in templates
    without_sms = templates - {"sms/review_request.txt.j2"}
    with pytest.raises(PlanFileError, match="no sms template 'review_request'"):
        normalised("review", {"enabled": True}, templates=without_sms)
