"""Campaigns after the estimate (declined work, review request, appointment reminder) on the
sequencer's own machinery: what triggers each, when its steps fall due, what stops it, the
command ids (a campaign run in them), and that the facts survive the table's codec."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.base import Channel, command_id_for, lead_id_for_order
from schemas.events import (
    Appointment,
    LeadSnapshot,
    Operation,
    OrderEvent,
    OutcomeStatus,
    ServiceAuthorization,
    ServiceLine,
    SignalKind,
    TouchPointOutcome,
)
from services.common.domain.send_windows import SendWindowPolicy
from services.sequencer.adapters.lead_codec import decode_lead, encode_lead
from services.sequencer.adapters.tenant_directory import StaticDirectory
from services.sequencer.domain.campaigns import (
    DEFAULT_CAMPAIGNS,
    Campaign,
    CampaignPlanError,
    appointment_run_id,
    parse_campaigns,
    plans_document,
)
from services.sequencer.domain.effects import snapshot, touchpoint_command, visible
from services.sequencer.domain.lead import Lead, StepStatus
from services.sequencer.domain.lifecycle import (
    apply_appointment,
    apply_contact,
    apply_order,
    apply_outcome,
    customer_returned,
)
from services.sequencer.domain.plan import DEFAULT_PLAN
from services.sequencer.domain.planner import DueCommand, evaluate, next_due, opening
from tests.support.deployment_secrets import LEAD_IDS
from tests.unit.sequencer.support import (
    T0,
    TENANT,
    MemoryCustomers,
    build_sequencer,
    order,
    outcome,
    signal,
)

POLICY = SendWindowPolicy.for_location(timezone="America/New_York")
POLICY_ZONE = ZoneInfo("America/New_York")
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def declined(service_id: str = "svc-brakes", **more: object) -> ServiceLine:
    return ServiceLine(
        service_id=service_id,
        name="Brake pads",
        authorization=ServiceAuthorization.DECLINED,
        total_cents=32_000,
        **more,  # type: ignore[arg-type]
    )


def invoiced(
    order_id: str = "o-1", *, at: datetime = T0, version: int = 2, **more: object
) -> OrderEvent:
    return order(order_id, at=at, version=version, status="Invoice", invoiced=True, **more)


def campaign_commands(lead: Lead, now: datetime) -> tuple[Lead, list[DueCommand]]:
    ev = evaluate(lead, DEFAULT_PLAN, POLICY, now, DEFAULT_CAMPAIGNS)
    return ev.lead, [c for c in ev.commands if c.campaign is not None]


def run_until(lead: Lead, end: datetime, step: timedelta = timedelta(hours=1)) -> list[DueCommand]:
    """Every campaign command a worker ticking every `step` emits until `end`."""
    out: list[DueCommand] = []
    now = T0
    while now <= end:
        lead, commands = campaign_commands(lead, now)
        out += commands
        now += step
    return out


# declined work ------------------------------------------------------------------------------
def test_declined_work_on_an_invoiced_order_follows_up_at_30_60_90_days() -> None:
    lead = apply_order(None, order(at=T0))
    lead = apply_order(lead, invoiced(at=T0, service_lines=[declined()]))
    sent = run_until(lead, T0 + 100 * DAY, step=timedelta(hours=6))
    assert [(c.campaign, c.step_index, c.channel, c.template) for c in sent] == [
        ("declined", 0, Channel.EMAIL, "declined_email_first"),
        ("declined", 1, Channel.SMS, "declined_sms_second"),
        ("declined", 2, Channel.EMAIL, "declined_email_last"),
    ]
    for command, days in zip(sent, (30, 60, 90), strict=True):
        assert command.due_at == opening(command.channel, T0 + days * DAY, POLICY)
        assert dict(command.context) == {
            "declined_services": ("Brake pads",),
            "declined_cents": 32_000,
        }


def test_deferred_work_counts_and_work_excluded_from_the_deferred_list_does_not() -> None:
    deferred = ServiceLine(service_id="s-d", name="Tires", deferred=True)
    authorized = ServiceLine(
        service_id="s-a", name="Oil", authorization=ServiceAuthorization.AUTHORIZED
    )
    lead = apply_order(None, invoiced(service_lines=[deferred, authorized]))
    assert lead.facts is not None and set(lead.facts.declined) == {"s-d"}
    estimate = apply_order(None, order(service_lines=[declined()]))  # not invoiced: no trigger
    assert estimate.facts is None


def test_a_revived_service_or_a_returning_customer_stops_declined_work() -> None:
    """Through the sequencer: the customer's later order (found by the customer index)
    revives the declined service, and nothing more of that campaign goes out."""
    seq, leads, outbox = build_sequencer(MemoryCustomers())
    first = invoiced("o-1", service_lines=[declined()])
    seq.on_order(order("o-1", at=T0), CONFIG, T0)
    seq.on_order(first, CONFIG, T0)
    assert first.lead_id is not None
    seq.on_due(first.lead_id, lambda _: CONFIG, T0 + 31 * DAY)
    assert [c.campaign for c in outbox.commands if c.campaign] == ["declined"]

    revival = ServiceLine(service_id="svc-new", name="Brake pads", revived_from="svc-brakes")
    later = order("o-2", at=T0 + 40 * DAY, service_lines=[revival])
    seq.on_order(later.model_copy(update={"order": later.order.model_copy(  # type: ignore[union-attr]
        update={"created_at": T0 + 40 * DAY})}), CONFIG, T0 + 40 * DAY)  # fmt: skip
    lead = leads.data[first.lead_id]
    assert lead.facts is not None and lead.facts.revived == {"svc-brakes"}
    seq.on_due(first.lead_id, lambda _: CONFIG, T0 + 91 * DAY)
    assert [c.campaign for c in outbox.commands if c.campaign] == ["declined"]
    assert next_due(lead, DEFAULT_PLAN, POLICY, campaigns=DEFAULT_CAMPAIGNS) is None


def test_an_order_at_another_location_of_the_company_stops_declined_work_here() -> None:
    """Ingest tells a new order (or one reviving work) to the company's other locations as a
    customer event carrying the order: here, the declined work of the customer's earlier
    order stops, and its revived service counts as brought back. A plain customer change, or
    an order older than this lead, stops nothing."""
    seq, leads, outbox = build_sequencer(MemoryCustomers())
    first = invoiced("o-1", service_lines=[declined()])
    seq.on_order(order("o-1", at=T0), CONFIG, T0)
    seq.on_order(first, CONFIG, T0)
    assert first.lead_id is not None

    def told(order_id: str, created: datetime, *lines: ServiceLine) -> OrderEvent:
        there = order(order_id, at=created, service_lines=list(lines))
        assert there.order is not None
        return there.model_copy(
            update={
                "event_id": f"shopmonkey:order:{order_id}:1:elsewhere:0001",
                "entity": "customer",
                "lead_id": None,
                "order": there.order.model_copy(update={"created_at": created}),
            }
        )

    plain = order("c-1", at=T0 + DAY).model_copy(
        update={"entity": "customer", "lead_id": None, "order": None, "event_id": "customer:c-1"}
    )
    seq.on_order(plain, CONFIG, T0 + DAY)
    seq.on_order(told("o-old", T0 - DAY), CONFIG, T0 + DAY)  # placed before this lead
    facts = leads.data[first.lead_id].facts
    assert facts is not None and facts.returned_at is None
    revival = ServiceLine(service_id="svc-new", name="Brake pads", revived_from="svc-brakes")
    seq.on_order(told("o-2", T0 + 10 * DAY, revival), CONFIG, T0 + 10 * DAY)
    lead = leads.data[first.lead_id]
    assert lead.facts is not None and lead.facts.returned_at == T0 + 10 * DAY
    assert lead.facts.revived == {"svc-brakes"}
    assert outbox.changes[-1].lead.revived_cents == 32_000
    seq.on_due(first.lead_id, lambda _: CONFIG, T0 + 91 * DAY)
    assert [c for c in outbox.commands if c.campaign] == []


def test_an_order_told_from_another_location_never_becomes_this_leads_order() -> None:
    """The customer event carrying another location's order, with the customer's new
    address: the address is taken, the order (its id, status, stage) is not."""
    lead = apply_order(None, order("o-1", at=T0))
    there = order("o-9", at=T0 + DAY, status="Invoice", invoiced=True, email="new@example.com")
    told = there.model_copy(
        update={"event_id": "shopmonkey:elsewhere:x", "entity": "customer", "lead_id": None}
    )
    after = apply_order(lead, told)
    assert after.customer.email == "new@example.com" and after.updated_at == T0 + DAY
    assert (after.order_id, after.order_status, after.stage) == (
        lead.order_id,
        lead.order_status,
        lead.stage,
    )
    assert visible(after)[0] == visible(lead)[0]


def test_a_customer_who_comes_back_stops_declined_work_even_without_a_revival() -> None:
    lead = apply_order(None, invoiced(service_lines=[declined()]))
    back = customer_returned(lead, T0 + 10 * DAY, set())
    assert run_until(back, T0 + 100 * DAY, step=timedelta(hours=12)) == []
    earlier = customer_returned(lead, T0 - 10 * DAY, set())  # an older order stops nothing
    assert len(run_until(earlier, T0 + 31 * DAY, step=timedelta(hours=12))) == 1


def test_the_snapshot_counts_declined_work_and_what_a_later_order_brought_back() -> None:
    """Declined (or deferred) services of the invoiced order, how many and their value; of
    those, the ones a later order revived (a revived id that was never declined counts not)."""
    tires = ServiceLine(service_id="svc-tires", name="Tires", deferred=True, total_cents=55_000)
    lead = apply_order(None, invoiced(service_lines=[declined(), tires]))
    before = snapshot(lead)
    assert (before.declined_services, before.declined_cents) == (2, 87_000)
    assert (before.revived_services, before.revived_cents) == (0, 0)
    back = customer_returned(lead, T0 + 10 * DAY, {"svc-brakes", "svc-never-declined"})
    after = LeadSnapshot.model_validate(snapshot(back).model_dump())  # the contract holds it
    assert (after.declined_services, after.declined_cents) == (2, 87_000)
    assert (after.revived_services, after.revived_cents) == (1, 32_000)
    assert visible(back) != visible(lead)  # a revival is a change the read model is told of
    plain = snapshot(apply_order(None, order()))
    assert (plain.declined_services, plain.declined_cents, plain.revived_services) == (0, 0, 0)


def test_a_revival_through_the_sequencer_emits_a_lead_change_with_the_figures() -> None:
    seq, _, outbox = build_sequencer(MemoryCustomers())
    seq.on_order(order("o-1", at=T0), CONFIG, T0)
    seq.on_order(invoiced("o-1", service_lines=[declined()]), CONFIG, T0)
    assert outbox.changes[-1].lead.declined_cents == 32_000
    assert outbox.changes[-1].lead.revived_services == 0
    changes = len(outbox.changes)
    revival = ServiceLine(service_id="svc-new", name="Brake pads", revived_from="svc-brakes")
    later = order("o-2", at=T0 + 40 * DAY, service_lines=[revival])
    seq.on_order(later.model_copy(update={"order": later.order.model_copy(  # type: ignore[union-attr]
        update={"created_at": T0 + 40 * DAY})}), CONFIG, T0 + 40 * DAY)  # fmt: skip
    first = [c for c in outbox.changes[changes:] if c.lead.shopmonkey_order_id == "o-1"]
    assert first, "the revival changed the first lead: a LeadChanged says so"
    assert (first[-1].lead.revived_services, first[-1].lead.revived_cents) == (1, 32_000)


def test_a_reply_stops_declined_work() -> None:
    lead = apply_order(None, invoiced(service_lines=[declined()]))
    replied = apply_contact(lead, signal(lead.lead_id, SignalKind.REPLIED, at=T0 + DAY))
    assert run_until(replied, T0 + 100 * DAY, step=timedelta(hours=12)) == []


# review request -----------------------------------------------------------------------------
def test_a_paid_order_gets_one_review_request_and_at_most_one_reminder() -> None:
    lead = apply_order(None, order(at=T0))
    paid = apply_order(lead, order(at=T0, version=3, status="Invoice", invoiced=True, paid=True))
    again = apply_order(paid, order(at=T0 + DAY, version=4, status="Invoice", paid=True))
    sent = run_until(again, T0 + 30 * DAY)
    assert [(c.campaign, c.template) for c in sent] == [
        ("review", "review_request"),
        ("review", "review_reminder"),
    ]
    assert sent[0].due_at == opening(Channel.EMAIL, T0 + timedelta(hours=2), POLICY)
    assert sent[0].channel is Channel.EMAIL  # the customer has an address, no SMS preference


def test_a_click_on_the_review_link_stops_the_reminder() -> None:
    paid = apply_order(None, order(at=T0, status="Invoice", invoiced=True, paid=True))
    lead, first = campaign_commands(paid, T0 + timedelta(hours=3))
    assert [c.template for c in first] == ["review_request"]
    clicked = apply_contact(
        lead, signal(lead.lead_id, SignalKind.CLICKED, at=T0 + timedelta(hours=5))
    )
    assert run_until(clicked, T0 + 30 * DAY) == []


def test_a_customer_who_prefers_sms_gets_the_review_request_by_sms() -> None:
    paid = apply_order(None, order(status="Invoice", invoiced=True, paid=True))
    prefers = paid.copy(customer=dataclasses.replace(paid.customer, preferred="sms"))
    _, sent = campaign_commands(prefers, T0 + timedelta(hours=3))
    assert [c.channel for c in sent] == [Channel.SMS]
    assert decode_lead(encode_lead(prefers)).customer.preferred == "sms"
    said_all = paid.copy(customer=dataclasses.replace(paid.customer, preferred="all"))
    assert [c.channel for c in campaign_commands(said_all, T0 + timedelta(hours=3))[1]] == [
        Channel.EMAIL
    ]


def test_a_customer_with_only_a_phone_gets_the_review_request_by_sms() -> None:
    paid = apply_order(None, order(email=None, status="Invoice", invoiced=True, paid=True))
    _, sent = campaign_commands(paid, T0 + timedelta(hours=3))
    assert [c.channel for c in sent] == [Channel.SMS]


# appointment reminder -----------------------------------------------------------------------
def appointment(
    start: datetime,
    *,
    version: int,
    at: datetime = T0,
    cancelled: bool = False,
    shopmonkey: bool = False,
    appointment_id: str = "ap-1",
) -> OrderEvent:
    return OrderEvent(
        event_id=f"appointment:{appointment_id}:{version}",
        tenant_id=TENANT,
        lead_id=lead_id_for_order(LEAD_IDS, TENANT, "o-1"),
        source=order().source,
        entity="appointment",
        operation=Operation.UPDATE,
        occurred_at=at,
        ingested_at=at,
        appointment=Appointment(
            appointment_id=appointment_id,
            start_at=start,
            cancelled=cancelled,
            shopmonkey_reminder=shopmonkey,
            version=version,
        ),
    )


def test_an_appointment_moved_twice_gets_one_reminder_a_day_before_its_last_start() -> None:
    lead = apply_order(None, order(at=T0))
    first, second, third = T0 + 5 * DAY, T0 + 8 * DAY, T0 + 6 * DAY
    lead = apply_appointment(lead, appointment(first, version=1))
    lead = apply_appointment(lead, appointment(second, version=2, at=T0 + DAY))
    lead = apply_appointment(lead, appointment(third, version=3, at=T0 + 2 * DAY))
    sent = run_until(lead, T0 + 10 * DAY, step=timedelta(minutes=30))
    assert [(c.campaign, c.template) for c in sent] == [
        (appointment_run_id("ap-1", third), "appointment_reminder")
    ]
    assert sent[0].due_at == opening(sent[0].channel, third - DAY, POLICY)


def test_a_cancelled_appointment_or_one_shopmonkey_reminds_of_gets_no_reminder() -> None:
    lead = apply_order(None, order(at=T0))
    start = T0 + 5 * DAY
    cancelled = apply_appointment(lead, appointment(start, version=2, cancelled=True))
    assert run_until(cancelled, T0 + 6 * DAY) == []
    theirs = apply_appointment(lead, appointment(start, version=1, shopmonkey=True))
    assert run_until(theirs, T0 + 6 * DAY) == []


def test_an_orders_appointment_date_is_reminded_of_until_an_appointment_record_says_more() -> None:
    start = T0 + 3 * DAY
    lead = apply_order(None, order(at=T0, appointment_at=start))
    sent = run_until(lead, T0 + 4 * DAY)
    assert [c.campaign for c in sent] == [appointment_run_id("order:o-1", start)]
    moved = apply_appointment(lead, appointment(start + DAY, version=1))
    sent = run_until(moved, T0 + 5 * DAY)
    assert [c.campaign for c in sent] == [appointment_run_id("ap-1", start + DAY)]


def test_a_reminder_is_never_sent_after_the_appointment_began() -> None:
    lead = apply_order(None, order(at=T0))
    soon = apply_appointment(lead, appointment(T0 + timedelta(hours=2), version=1))
    _, sent = campaign_commands(soon, T0 + timedelta(minutes=5))
    assert sent == []  # due a day before: already past, and marked missed
    assert not run_until(soon, T0 + DAY)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=30, max_value=10 * 24 * 60), st.booleans()),
        min_size=1,
        max_size=6,
    ),
    st.permutations(range(6)),
    st.integers(min_value=30, max_value=12 * 60),
)
def test_a_moved_or_cancelled_appointment_never_gets_the_old_reminder(
    versions: list[tuple[int, bool]], arrival: list[int], tick_minutes: int
) -> None:
    """Versions of one appointment (start in minutes from T0, cancelled) arrive in any order,
    one every few hours, a worker ticking between them: every reminder emitted is for the
    start of the latest version known at that moment, never cancelled, before that start;
    at most one reminder per start."""
    order_of_arrival = [i for i in arrival if i < len(versions)]
    lead = apply_order(None, order(at=T0))
    known: dict[int, tuple[datetime, bool]] = {}
    now = T0
    emitted: list[DueCommand] = []
    for n, index in enumerate(order_of_arrival):
        minutes, cancelled = versions[index]
        start = T0 + timedelta(minutes=minutes)
        arrives = T0 + timedelta(hours=3 * n)
        while now < arrives:
            lead, commands = campaign_commands(lead, now)
            check(commands, known, now)
            emitted += commands
            now += timedelta(minutes=tick_minutes)
        lead = apply_appointment(
            lead, appointment(start, version=index + 1, at=arrives, cancelled=cancelled)
        )
        known[index + 1] = (start, cancelled)
    end = T0 + timedelta(days=11)
    while now < end:
        lead, commands = campaign_commands(lead, now)
        check(commands, known, now)
        emitted += commands
        now += timedelta(minutes=tick_minutes)
    runs = [c.campaign for c in emitted]
    assert len(runs) == len(set(runs))


def check(
    commands: list[DueCommand], known: dict[int, tuple[datetime, bool]], now: datetime
) -> None:
    if not commands:
        return
    start, cancelled = known[max(known)]
    assert not cancelled
    for command in commands:
        assert command.campaign == appointment_run_id("ap-1", start)
        assert command.due_at < start and now < start


# ids, outcomes, codec ------------------------------------------------------------------------
def test_campaign_command_ids_differ_from_the_plans_and_between_runs() -> None:
    paid = apply_order(None, order(status="Invoice", invoiced=True, paid=True))
    lead, sent = campaign_commands(paid, T0 + timedelta(hours=3))
    command = touchpoint_command(lead, sent[0], now=T0)
    assert command.campaign == "review" and command.context["campaign"] == "review"
    assert command.command_id == command_id_for(lead.lead_id, 0, command.channel, "review")
    assert command.command_id != command_id_for(lead.lead_id, 0, command.channel)
    assert command_id_for(lead.lead_id, 0, Channel.SMS, appointment_run_id("a", T0)) != (
        command_id_for(lead.lead_id, 0, Channel.SMS, appointment_run_id("a", T0 + DAY))
    )


def test_an_outcome_of_a_campaign_step_lands_on_its_run_not_on_the_plan() -> None:
    paid = apply_order(None, order(status="Invoice", invoiced=True, paid=True))
    lead, sent = campaign_commands(paid, T0 + timedelta(hours=3))
    nurture_before = dict(lead.steps)
    done = apply_outcome(
        lead,
        TouchPointOutcome(
            command_id=command_id_for(lead.lead_id, 0, sent[0].channel, "review"),
            tenant_id=TENANT,
            lead_id=lead.lead_id,
            step_index=0,
            channel=sent[0].channel,
            status=OutcomeStatus.SENT,
            reason="sent",
            decided_at=T0 + timedelta(hours=3),
            campaign="review",
        ),
    )
    assert done.runs["review"][0].status is StepStatus.SENT
    assert done.steps == nurture_before


def test_campaign_facts_and_runs_survive_the_codec_and_old_records_have_none() -> None:
    lead = apply_order(None, order(at=T0))
    assert decode_lead(encode_lead(lead)) == lead and lead.facts is None
    lead = apply_order(lead, invoiced(service_lines=[declined()], paid=True))
    lead = apply_appointment(lead, appointment(T0 + 5 * DAY, version=1))
    lead, _ = campaign_commands(lead, T0 + 31 * DAY)
    assert lead.facts is not None and lead.runs
    assert decode_lead(encode_lead(lead)) == lead


def test_defaults_follow_the_peers() -> None:
    assert [s.after for s in DEFAULT_CAMPAIGNS.declined.steps] == [30 * DAY, 60 * DAY, 90 * DAY]
    assert len(DEFAULT_CAMPAIGNS.review.steps) == 2  # one ask, at most one reminder
    assert [s.after for s in DEFAULT_CAMPAIGNS.appointment.steps] == [-DAY]


# the sequencer, with fakes -------------------------------------------------------------------
CONFIG = dataclasses.replace(
    StaticDirectory("America/New_York").get(TENANT), campaigns=DEFAULT_CAMPAIGNS
)


def test_an_appointment_of_an_order_never_seen_is_ignored_not_a_lead() -> None:
    seq, leads, _ = build_sequencer(MemoryCustomers())
    result = seq.on_order(appointment(T0 + DAY, version=1), CONFIG, T0)
    assert result.ignored == "unknown_lead" and not leads.data


# a tenant's plans ----------------------------------------------------------------------------
def test_a_tenant_without_plans_has_every_campaign_off_and_turns_one_on_by_name() -> None:
    off = parse_campaigns(None)
    assert not any(off.of(c).enabled for c in Campaign)
    paid = apply_order(None, order(status="Invoice", invoiced=True, paid=True))
    assert evaluate(paid, DEFAULT_PLAN, POLICY, T0 + DAY, off).commands[1:] == ()
    on = parse_campaigns({"review": {"enabled": True}})
    assert on.review == DEFAULT_CAMPAIGNS.review and not on.declined.enabled
    custom = parse_campaigns(
        {
            "declined": {
                "steps": [{"after_minutes": 5, "channel": "sms", "template": "declined_sms_second"}]
            }
        }
    )
    assert [(s.after, s.channel) for s in custom.declined.steps] == [
        (timedelta(minutes=5), Channel.SMS)
    ]
    assert parse_campaigns(plans_document(DEFAULT_CAMPAIGNS)) == DEFAULT_CAMPAIGNS


def test_invalid_plans_say_where() -> None:
    for raw, where in (
        ({"reviews": {}}, "campaign_plans.reviews"),
        ({"review": {"steps": []}}, "campaign_plans.review.steps"),
        ({"review": {"steps": [{"after_minutes": 1, "template": "../etc"}]}}, "template"),
        (
            {"declined": {"steps": [
                {"after_minutes": 9, "template": "a"}, {"after_minutes": 1, "template": "b"}]}},
            "ordered",
        ),
    ):  # fmt: skip
        with pytest.raises(CampaignPlanError, match=re.escape(where)):
            parse_campaigns(raw)


def test_a_campaign_step_due_on_a_day_the_location_closed_waits_for_the_next_open_day() -> None:
    closed = SendWindowPolicy.for_location(
        timezone="America/New_York", closed_days=[T0.astimezone(POLICY_ZONE).date()]
    )
    paid = apply_order(None, order(status="Invoice", invoiced=True, paid=True))
    later_that_day = evaluate(
        paid, DEFAULT_PLAN, closed, T0 + timedelta(hours=5), DEFAULT_CAMPAIGNS
    )
    assert later_that_day.commands == ()  # closed: the review request waits (open: it goes)
    assert [
        c.campaign
        for c in evaluate(
            paid, DEFAULT_PLAN, POLICY, T0 + timedelta(hours=5), DEFAULT_CAMPAIGNS
        ).commands
    ] == ["review"]
    ev = evaluate(paid, DEFAULT_PLAN, closed, T0 + DAY, DEFAULT_CAMPAIGNS)
    review = [c for c in ev.commands if c.campaign == "review"]
    assert len(review) == 1
    assert (
        review[0].due_at.astimezone(POLICY_ZONE).date() == (T0 + DAY).astimezone(POLICY_ZONE).date()
    )


def test_signals_and_outcomes_in_any_order_publish_the_same_lead() -> None:
    """A bounce (a signal, at its time) and the outcome that skipped a step for it (no time of
    its own) reach the sequencer in either order in a replay: the same lead comes out."""
    published = []
    for signal_first in (True, False):
        seq, leads, outbox = build_sequencer(MemoryCustomers())
        first = order(at=T0)
        lead_id = first.lead_id
        assert lead_id is not None
        seq.on_order(first, CONFIG, T0)
        bounced = signal(lead_id, SignalKind.BOUNCED, channel=Channel.EMAIL, at=T0 + HOUR)
        skipped = outcome(lead_id, 0, Channel.EMAIL, OutcomeStatus.SKIPPED, reason="suppressed")
        later = T0 + 2 * HOUR
        if signal_first:
            seq.on_signal(bounced, CONFIG, later)
            seq.on_outcome(skipped, CONFIG, later)
        else:
            seq.on_outcome(skipped, CONFIG, later)
            seq.on_signal(bounced, CONFIG, later)
        last = outbox.changes[-1].lead
        assert last.updated_at == leads.data[lead_id].updated_at == T0 + HOUR
        published.append(last.model_dump(exclude={"version"}))
    assert published[0] == published[1]


def test_an_appointment_does_not_move_what_the_lead_shows() -> None:
    """Read before its order's lead existed, an appointment is ignored live but applied in a
    replay (the lead exists by then): so it moves nothing the read model shows, updated_at
    included, or a replay would change the lead (the full-replay e2e caught it)."""
    seq, leads, outbox = build_sequencer(MemoryCustomers())
    first = order(at=T0)
    seq.on_order(first, CONFIG, T0)
    assert first.lead_id is not None
    shown = leads.data[first.lead_id].updated_at
    changes = len(outbox.changes)
    seq.on_order(appointment(T0 + 5 * DAY, version=1, at=T0 + DAY), CONFIG, T0 + DAY)
    lead = leads.data[first.lead_id]
    assert lead.updated_at == shown and len(outbox.changes) == changes
    assert lead.facts is not None and "ap-1" in lead.facts.appointments


def test_what_the_lead_shows_does_not_depend_on_when_an_outcome_arrives() -> None:
    """A payment after the invoice changes nothing else the lead shows (a campaign fact only).
    Live, the welcome email's outcome came before the payment; a replay reads outcomes from
    their own topic and may apply it after. Both orders publish the same lead, updated at the
    payment's time, and the lead table agrees (the full-replay e2e with campaigns on caught a
    lead whose payment moved updated_at unpublished)."""
    published = []
    for outcome_first in (True, False):
        seq, leads, outbox = build_sequencer(MemoryCustomers())
        first = order(at=T0)
        lead_id = first.lead_id
        assert lead_id is not None
        sent = outcome(lead_id, 0, Channel.EMAIL, OutcomeStatus.SENT, at=T0 + timedelta(seconds=1))
        paid = order(at=T0 + 2 * HOUR, version=3, status="Invoice", invoiced=True, paid=True)
        seq.on_order(first, CONFIG, T0)
        seq.on_order(invoiced(at=T0 + HOUR), CONFIG, T0 + HOUR)
        for step in (sent, paid) if outcome_first else (paid, sent):
            if isinstance(step, OrderEvent):
                seq.on_order(step, CONFIG, T0 + 2 * HOUR)
            else:
                seq.on_outcome(step, CONFIG, T0 + 2 * HOUR)
        last = outbox.changes[-1].lead
        assert last.updated_at == leads.data[lead_id].updated_at == T0 + 2 * HOUR
        published.append(last.model_dump(exclude={"version"}))
    assert published[0] == published[1]
