"""The dashboard's leads (service layer on fakes of its ports): search and lead pages only of
the operator's locations, contacts masked unless whitelisted, and each action a contact signal
audited with who, when and why (never a read-model write)."""

from __future__ import annotations

import uuid

import pytest

from schemas.base import Channel
from schemas.events import SignalKind
from services.common.domain.operators import Operator
from services.ingest.errors import InvalidPayload, UnknownTenant
from tests.unit.ingest.support_leads import fake_desk, lead_row

AUSTIN, BOSTON = uuid.uuid4(), uuid.uuid4()


def operator(role: str = "hq", *tenants: uuid.UUID) -> Operator:
    return Operator(uuid.uuid4(), f"{role}.op@example.com", role, True, 0, frozenset(tenants))


async def test_search_is_scoped_masked_and_paged() -> None:
    mine = lead_row(AUSTIN)
    demo = lead_row(AUSTIN, email="demo.lead@example.com", first_name="Demo")
    theirs = lead_row(BOSTON, tenant_name="Boston")
    d = fake_desk(mine, demo, theirs, whitelist=frozenset({"demo.lead@example.com"}))
    found = await d.desk.search(operator("location", AUSTIN), "", 0)
    assert d.directory.asked == [frozenset({AUSTIN})]
    by_id = {x["lead_id"]: x for x in found["leads"]}
    assert set(by_id) == {str(mine["lead_id"]), str(demo["lead_id"])}
    assert by_id[str(mine["lead_id"])]["email"] != "jane.doe@gmail.com"  # masked
    assert "0123" not in by_id[str(mine["lead_id"])]["phone"]
    assert by_id[str(demo["lead_id"])]["email"] == "demo.lead@example.com"  # whitelisted
    assert by_id[str(demo["lead_id"])]["phone"] == "+12025550123"
    many = fake_desk(*(lead_row(AUSTIN) for _ in range(30)))
    first = await many.desk.search(operator(), "JA", 0)
    second = await many.desk.search(operator(), "ja", 1)
    assert (len(first["leads"]), first["more"]) == (25, True)
    assert (len(second["leads"]), second["more"]) == (5, False)


@pytest.mark.parametrize("query", ["x" * 101, "ja\x00ne", "\u202ejane"])
async def test_a_strange_query_is_refused(query: str) -> None:
    with pytest.raises(InvalidPayload):
        await fake_desk().desk.search(operator(), query, 0)


async def test_another_locations_lead_is_unknown_and_nothing_is_emitted() -> None:
    theirs = lead_row(BOSTON)
    d = fake_desk(theirs)
    austin = operator("location", AUSTIN)
    for attempt in (
        d.desk.show(austin, theirs["lead_id"]),
        d.desk.act(austin, theirs["lead_id"], "stop", "customer called"),
        d.desk.show(austin, uuid.uuid4()),
    ):
        with pytest.raises(UnknownTenant):
            await attempt
    assert d.publisher.published == [] and d.store.suppressions == {}


async def test_stop_is_a_signal_audited_with_who_when_why_and_shows_in_the_timeline() -> None:
    lead = lead_row(AUSTIN)
    d = fake_desk(lead)
    me = operator("location", AUSTIN)
    done = await d.desk.act(me, lead["lead_id"], "stop", "  customer called:\n stop  ")
    [signal] = d.publisher.published
    assert signal.kind is SignalKind.SEQUENCE_STOPPED and signal.lead_id == lead["lead_id"]
    assert signal.source == "dashboard"
    assert signal.detail == f"{me.email}: customer called: stop"
    assert done["by"] == me.email and done["signals"] == [signal.signal_id]
    page = await d.desk.show(me, lead["lead_id"])
    [event] = page["timeline"]
    assert event["kind"] == "signal" and "sequence_stopped" in event["summary"]
    assert page["actions"] == ["lost", "resume", "stop", "suppress"]


async def test_resume_and_lost_are_signals_and_suppress_lists_both_contacts_first() -> None:
    lead = lead_row(AUSTIN)
    d = fake_desk(lead)
    for action in ("resume", "lost"):
        await d.desk.act(operator(), lead["lead_id"], action, "why not")
    await d.desk.act(operator(), lead["lead_id"], "suppress", "asked to be left alone")
    kinds = [(s.kind, s.channel) for s in d.publisher.published]
    assert kinds == [
        (SignalKind.SEQUENCE_RESUMED, None),
        (SignalKind.LOST, None),
        (SignalKind.OPTED_OUT, Channel.EMAIL),
        (SignalKind.OPTED_OUT, Channel.SMS),
    ]
    assert d.store.suppressions == {
        ("email", "jane.doe@gmail.com"): "operator",
        ("sms", "+12025550123"): "operator",
    }
    assert set(d.store.scopes.values()) == {AUSTIN}


@pytest.mark.parametrize(
    ("action", "reason"),
    [("delete", "x"), ("stop", ""), ("stop", "   "), ("stop", "a\x07b"), ("stop", "y" * 200)],
)
async def test_a_bad_action_or_reason_is_refused(action: str, reason: str) -> None:
    lead = lead_row(AUSTIN)
    d = fake_desk(lead)
    with pytest.raises(InvalidPayload):
        await d.desk.act(operator(), lead["lead_id"], action, reason)
    assert d.publisher.published == []
