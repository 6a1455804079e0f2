"""A plan file (YAML) checked before it is stored: the plan format itself (`parse_plan`,
`parse_campaigns`: channels, offsets, limits), the order of the steps, what an offset may be
for each campaign, and that every template a step may use exists in
`services/outbound/templates` for each channel it may go on (a `preferred` step: both email
and SMS). Errors name their place (`review.steps.1.template: …`). Pure but for reading the
packaged template names."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import pairwise
from typing import Any

import yaml

from schemas.base import Channel
from services.outbound.adapters.templates import TEMPLATE_NAME, packaged_templates, template_files
from services.sequencer.domain.campaigns import (
    Campaign,
    CampaignPlan,
    CampaignPlanError,
    campaign_document,
    parse_campaign,
)
from services.sequencer.domain.plan import NurturePlan, PlanError, parse_plan, plan_document

NURTURE = "nurture"
KINDS = (NURTURE, *(c.value for c in Campaign))
TEMPLATES_DIR = "services/outbound/templates"


class PlanFileError(ValueError):
    """The plan file is not a valid plan; the message names the place."""


def load_yaml(text: str) -> Any:
    """The file's one YAML document; a syntax error names its line and column."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc)
        raise PlanFileError(f"{where}: not valid YAML: {problem}") from None


def to_yaml(document: dict[str, Any]) -> str:
    """A plan document as YAML, its keys in the document's order (the normalised form)."""
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, default_flow_style=False)


def parsed(kind: str, raw: Any) -> NurturePlan | CampaignPlan:
    """The plan `raw` describes for `kind` (nurture or a campaign); raises PlanFileError."""
    if kind not in KINDS:
        raise PlanFileError(f"unknown campaign {kind!r}: one of {', '.join(KINDS)}")
    if not isinstance(raw, dict):
        what = "empty" if raw is None else f"a {type(raw).__name__}"
        raise PlanFileError(f"{kind}: the plan must be a mapping of its fields, not {what}")
    _check_steps(kind, raw)
    try:
        if kind == NURTURE:
            return parse_plan(raw)
        return parse_campaign(Campaign(kind), raw)
    except (PlanError, CampaignPlanError) as exc:
        message = str(exc)
        for prefix in ("nurture_plan.", f"campaign_plans.{kind}."):
            message = message.removeprefix(prefix)
        raise PlanFileError(f"{kind}.{message}") from None


def normalised(kind: str, raw: Any, *, templates: frozenset[str] | None = None) -> dict[str, Any]:
    """The document to store for `raw` (every field written out), once it is valid and its
    templates exist (`templates`: the packaged template files, read when None)."""
    plan = parsed(kind, raw)
    available = packaged_templates() if templates is None else templates
    steps: list[tuple[Channel | None, str]] = [(s.channel, s.template) for s in plan.steps]
    for index, (channel, template) in enumerate(steps):
        channels: Iterable[Channel] = (Channel.EMAIL, Channel.SMS)
        if channel is not None:
            channels = (channel,)
        _check_template(kind, index, template, tuple(channels), available)
    if isinstance(plan, NurturePlan):
        return plan_document(plan)
    return campaign_document(plan)


def _check_steps(kind: str, raw: dict[str, Any]) -> None:
    """What the format's own message would not place: which step is out of order, an offset
    that cannot work for this campaign, a plan lost before its last step."""
    steps = raw.get("steps")
    if not isinstance(steps, list):
        return  # the format's check says what is wrong
    channels = ["email", "sms"] if kind == NURTURE else ["email", "sms", "preferred"]
    for i, s in enumerate(steps):
        channel = s.get("channel", "preferred") if isinstance(s, dict) else None
        if isinstance(s, dict) and channel not in channels:
            raise PlanFileError(
                f"{kind}.steps.{i}.channel: {channel!r} is no channel here: one of "
                f"{', '.join(channels)}"
            )
    offsets: list[tuple[int, int]] = [
        (i, s["after_minutes"])
        for i, s in enumerate(steps)
        if isinstance(s, dict) and type(s.get("after_minutes")) is int
    ]
    for (_, before), (i, after) in pairwise(offsets):
        if after < before:
            raise PlanFileError(
                f"{kind}.steps.{i}.after_minutes: {after} comes before the previous step's "
                f"{before}: steps must be ordered by after_minutes"
            )
    for i, after in offsets:
        if kind == Campaign.APPOINTMENT.value and after >= 0:
            raise PlanFileError(
                f"{kind}.steps.{i}.after_minutes: {after}: a reminder goes before the "
                "appointment's start, so the offset must be negative (e.g. -1440: a day before)"
            )
        if kind in (NURTURE, Campaign.DECLINED.value, Campaign.REVIEW.value) and after < 0:
            raise PlanFileError(
                f"{kind}.steps.{i}.after_minutes: {after}: counted from the "
                f"{'lead' if kind == NURTURE else 'trigger'}, it must not be negative"
            )
    lost = raw.get("lost_after_minutes")
    if kind == NURTURE and type(lost) is int and offsets and lost < offsets[-1][1]:
        raise PlanFileError(
            f"{kind}.lost_after_minutes: {lost} precedes the last step ({offsets[-1][1]}): "
            "the lead would be lost before its last touch point"
        )


def _check_template(
    kind: str, index: int, name: str, channels: tuple[Channel, ...], available: frozenset[str]
) -> None:
    where = f"{kind}.steps.{index}.template"
    if not TEMPLATE_NAME.match(name):
        raise PlanFileError(
            f"{where}: {name!r} is no template name (lower-case letters, digits, _ and -)"
        )
    for channel in channels:
        missing = [f for f in template_files(channel, name) if f not in available]
        if missing:
            why = " (a preferred step may go by email or SMS)" if len(channels) > 1 else ""
            raise PlanFileError(
                f"{where}: no {channel.value} template {name!r} in {TEMPLATES_DIR}{why}: "
                f"missing {', '.join(missing)}"
            )
