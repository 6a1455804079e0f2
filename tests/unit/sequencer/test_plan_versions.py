"""Versioned plans (DESIGN §12): a lead follows the nurture plan version in force when it was
created and a campaign run the version in force at its anchor, live and in a replay; without
versions everything is as before (the tenant's row alone)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from schemas.base import Channel
from schemas.events import OrderEvent
from services.sequencer.adapters.tenant_directory import config_for
from services.sequencer.domain.campaigns import NO_CAMPAIGNS, Campaign, parse_campaigns
from services.sequencer.domain.lead import Lead
from services.sequencer.domain.lifecycle import apply_order
from services.sequencer.domain.plan import DEFAULT_PLAN, TenantConfig, in_force, parse_plan
from services.sequencer.domain.planner import evaluate, next_due
from services.sequencer.domain.replay import ReplayContext
from tests.unit.sequencer.support import T0, TENANT, build_sequencer, order

DAY = timedelta(days=1)


def nurture(template: str) -> dict[str, Any]:
    return {
        "name": template,
        "steps": [{"after_minutes": 0, "channel": "email", "template": template}],
        "lost_after_minutes": 14 * 24 * 60,
        "max_late_minutes": 7 * 24 * 60,  # a replay two days later still emits (record only)
    }


def review(template: str, channel: str = "email", after: int = 120) -> dict[str, Any]:
    return {
        "enabled": True,
        "steps": [{"after_minutes": after, "channel": channel, "template": template}],
        "max_late_minutes": 7 * 24 * 60,
    }


def config(
    versions: list[tuple[str, datetime, dict[str, Any]]],
    *,
    nurture_plan: dict[str, Any] | None = None,
    campaign_plans: dict[str, Any] | None = None,
) -> TenantConfig:
    return config_for(
        TENANT,
        timezone="America/New_York",
        us_state=None,
        hours=None,
        nurture_plan=nurture_plan,
        campaign_plans=campaign_plans,
        versions=versions,
    )


def created(event: OrderEvent, at: datetime) -> OrderEvent:
    assert event.order is not None
    return event.model_copy(update={"order": event.order.model_copy(update={"created_at": at})})


# the version in force at an instant ---------------------------------------------------------
def test_the_version_in_force_is_the_latest_set_at_or_before_the_instant() -> None:
    versions = ((T0, "v1"), (T0 + DAY, "v2"), (T0 + 3 * DAY, "v3"))
    assert in_force(versions, T0 - timedelta(seconds=1), "now", "before") == "before"
    assert in_force(versions, T0, "now", "before") == "v1"
    assert in_force(versions, T0 + DAY - timedelta(seconds=1), "now", "before") == "v1"
    assert in_force(versions, T0 + DAY, "now", "before") == "v2"
    assert in_force(versions, T0 + 2 * DAY, "now", "before") == "v2"
    # from the latest version on: what the tenant's row says (kept equal to it by `set`)
    assert in_force(versions, T0 + 3 * DAY, "now", "before") == "now"
    assert in_force((), T0, "now", "before") == "now"


def test_a_tenant_config_answers_each_plan_at_an_instant() -> None:
    v1, v2 = nurture("nurture_email_welcome"), nurture("estimate_checkin")
    cfg = config(
        [
            ("nurture", T0 - 10 * DAY, v1),
            ("nurture", T0 + DAY, v2),
            ("review", T0 - 10 * DAY, review("review_request")),
        ],
        nurture_plan=v2,
        campaign_plans={"review": review("review_request")},
    )
    assert cfg.plan_at(T0 - 20 * DAY) == DEFAULT_PLAN  # before the first version
    assert cfg.plan_at(T0) == parse_plan(v1)
    assert cfg.plan_at(T0 + 2 * DAY) == parse_plan(v2) == cfg.plan
    assert not cfg.campaign_at(Campaign.REVIEW, T0 - 20 * DAY).enabled  # off before it was set
    assert cfg.campaign_at(Campaign.REVIEW, T0).enabled
    assert cfg.campaigns_at(T0).declined == NO_CAMPAIGNS.declined  # never set: off
    assert cfg.campaign_history is not None


def test_without_versions_the_tenant_row_alone_decides_as_before() -> None:
    cfg = config([], nurture_plan=nurture("estimate_checkin"), campaign_plans={"review": {}})
    assert cfg.plan_versions == () and cfg.campaign_versions == ()
    assert cfg.plan_at(T0 - 1000 * DAY) is cfg.plan == parse_plan(nurture("estimate_checkin"))
    assert cfg.campaign_history is None
    assert cfg.campaigns_at(T0 - 1000 * DAY) == cfg.campaigns == parse_campaigns({"review": {}})


def test_an_invalid_stored_version_is_the_default_plan_or_the_campaign_off() -> None:
    cfg = config(
        [("nurture", T0, {"steps": []}), ("review", T0, {"steps": "no"})],
        nurture_plan=nurture("estimate_checkin"),
        campaign_plans={"review": {}},
    )
    assert cfg.plan_versions == ((T0, DEFAULT_PLAN),)
    assert cfg.campaign_versions == ((Campaign.REVIEW, ((T0, NO_CAMPAIGNS.review),)),)


# the sequencer ------------------------------------------------------------------------------
def test_a_replayed_event_gets_the_nurture_plan_version_in_force_at_its_time() -> None:
    seq, _, outbox = build_sequencer()
    v1, v2 = nurture("nurture_email_welcome"), nurture("estimate_checkin")
    then = config([("nurture", T0 - 10 * DAY, v1)], nurture_plan=v1)
    event = order(at=T0)
    assert event.lead_id is not None
    seq.on_order(event, then, T0)
    assert [c.template for c in outbox.commands] == ["nurture_email_welcome"]

    # an operator sets version 2 a day later; two days later the history is replayed
    now = config(
        [("nurture", T0 - 10 * DAY, v1), ("nurture", T0 + DAY, v2)],
        nurture_plan=v2,
    )
    replay = ReplayContext(uuid.uuid4(), since=T0 - DAY)
    seq.on_order(event, now, T0 + 2 * DAY, replay)
    replayed = outbox.commands[-1]
    assert replayed.record_only and replayed.template == "nurture_email_welcome"
    assert replayed.command_id == outbox.commands[0].command_id

    # a lead created after version 2 follows version 2
    fresh = created(order("o-2", at=T0 + 2 * DAY), T0 + 2 * DAY)
    seq.on_order(fresh, now, T0 + 2 * DAY)
    [new] = [c for c in outbox.commands if c.lead_id == fresh.lead_id]
    assert new.template == "estimate_checkin" and not new.record_only


def test_the_due_timer_plans_with_the_version_of_the_leads_creation() -> None:
    seq, _, outbox = build_sequencer()
    two_steps = nurture("nurture_email_welcome")
    two_steps["steps"].append({"after_minutes": 120, "channel": "sms", "template": "sms_a"})
    changed = nurture("estimate_checkin")
    changed["steps"].append({"after_minutes": 120, "channel": "sms", "template": "sms_b"})
    cfg = config(
        [("nurture", T0 - DAY, two_steps), ("nurture", T0 + timedelta(hours=1), changed)],
        nurture_plan=changed,
    )
    event = order(at=T0)
    assert event.lead_id is not None
    seq.on_order(event, cfg, T0)
    seq.on_due(event.lead_id, lambda _: cfg, T0 + timedelta(hours=3))
    assert [c.template for c in outbox.commands] == ["nurture_email_welcome", "sms_a"]


def paid(at: datetime) -> Lead:
    lead = apply_order(None, order(at=at))
    return apply_order(lead, order(at=at, version=2, status="Invoice", invoiced=True, paid=True))


def campaign_commands(lead: Lead, cfg: TenantConfig, now: datetime) -> list[tuple[str, Channel]]:
    plan = cfg.plan_at(lead.created_at)
    ev = evaluate(lead, plan, cfg.policy, now, cfg.campaigns, cfg.campaign_history)
    return [(c.template, c.channel) for c in ev.commands if c.campaign is not None]


def test_each_campaign_run_follows_the_version_in_force_at_its_anchor() -> None:
    v1 = review("review_request", "email", after=120)
    v2 = review("review_reminder", "sms", after=60)
    cfg = config(
        [("review", T0 - 10 * DAY, v1), ("review", T0 + DAY, v2)],
        campaign_plans={"review": v2},
    )
    old = paid(T0)
    assert campaign_commands(old, cfg, T0 + 3 * DAY) == [("review_request", Channel.EMAIL)]
    new = paid(T0 + 2 * DAY)
    assert campaign_commands(new, cfg, T0 + 2 * DAY + timedelta(hours=2)) == [
        ("review_reminder", Channel.SMS)
    ]
    # paid before the campaign was ever turned on: no run
    assert campaign_commands(paid(T0 - 20 * DAY), cfg, T0 - 19 * DAY) == []
    # next_due agrees with the version at the anchor (2 h after payment, not 1 h)
    due = next_due(
        old, cfg.plan_at(old.created_at), cfg.policy, None, cfg.campaigns, cfg.campaign_history
    )
    assert due is not None and due >= T0 + timedelta(hours=2)


def test_a_campaign_turned_off_now_stops_runs_anchored_under_an_older_version() -> None:
    v1 = review("review_request")
    off = {**review("review_request"), "enabled": False}
    cfg = config(
        [("review", T0 - 10 * DAY, v1), ("review", T0 + DAY, off)],
        campaign_plans={"review": off},
    )
    assert campaign_commands(paid(T0), cfg, T0 + 3 * DAY) == []
