"""An order's service lines and Shopmonkey appointments as ingest normalises them (campaigns,
reference §5): realistic records, and hostile ones (huge lists, wrong types, NUL, over-long
ids, absurd numbers) clamped or ignored, never refused for a service line, and the event's
bytes those of the validated contract."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import lead_id_for_order
from schemas.events import Operation, OrderEvent, OrderSource, ServiceAuthorization
from services.ingest.domain import normalise
from services.ingest.domain.draft import OrderEventDraft
from services.ingest.errors import InvalidPayload
from services.ingest.service_layer.order_events import known_contact, wants_services
from tests.support.deployment_secrets import LEAD_IDS
from tests.support.shopmonkey_payloads import ORDER_ID, order

TENANT = uuid.UUID("11111111-2222-4333-8444-555555555555")
NOW = datetime(2026, 5, 1, 15, 5, tzinfo=UTC)
APPOINTMENT_ID = "a0e1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b"


def service(sid: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": sid,
        "orderId": ORDER_ID,
        "name": f"Service {sid}",
        "authorizationStatus": "NotAuthorized",
        "deferredReason": None,
        "excludedFromDeferred": False,
        "revived": False,
        "revivedFromId": None,
        "totalCents": 10_000,
        **fields,
    }


def build(data: dict[str, Any], adjusted: normalise.Adjusted | None = None, **kw: Any) -> Any:
    return normalise.order_draft(
        TENANT,
        data,
        operation=Operation.UPDATE,
        source=OrderSource.POLL,
        contact=known_contact("order", data),
        now=NOW,
        ids=LEAD_IDS,
        adjusted=adjusted,
        **kw,
    )


def same_as_validated(draft: OrderEventDraft) -> OrderEvent:
    """The draft's bytes are those of the validated contract (what the topic holds)."""
    event = draft.event()
    validated = OrderEvent.model_validate(event.model_dump())
    assert validated == event
    assert draft.to_bytes() == event.to_bytes() == validated.model_dump_json().encode()
    return validated


def test_an_invoiced_orders_services_become_its_service_lines() -> None:
    services = [
        service("s1", authorizationStatus="Authorized", totalCents=45_000),
        service("s2", authorizationStatus="Declined", deferredReason="Declined"),
        service(
            "s3",
            authorizationStatus="Declined",
            deferredReason="Declined",
            excludedFromDeferred=True,
        ),
        service("s4", deferredReason="InvoicedNotAuthorized", totalCents=1299.9),
        service("s5", authorizationStatus="Authorized", revived=True, revivedFromId="s0-old"),
    ]
    data = order(invoiced=True, status="Invoice", services=services)["data"]
    event = same_as_validated(build(data))
    assert event.order is not None
    lines = event.order.service_lines
    assert [
        (x.service_id, x.authorization, x.deferred, x.revived_from, x.total_cents) for x in lines
    ] == [
        ("s1", ServiceAuthorization.AUTHORIZED, False, None, 45_000),
        ("s2", ServiceAuthorization.DECLINED, True, None, 10_000),
        ("s3", ServiceAuthorization.DECLINED, False, None, 10_000),
        ("s4", ServiceAuthorization.NOT_AUTHORIZED, True, None, 1299),
        ("s5", ServiceAuthorization.AUTHORIZED, False, "s0-old", 10_000),
    ]
    assert lines[0].name == "Service s1"
    # the names list is what it always was
    assert event.order.services == [f"Service s{i}" for i in range(1, 6)]


def test_fetched_services_fill_the_lines_only_when_the_order_embeds_none() -> None:
    fetched = [service("f1", authorizationStatus="Declined", deferredReason="Declined")]
    bare = order(invoiced=True)["data"]
    event = same_as_validated(build(bare, fetched_services=fetched))
    assert event.order is not None and [x.service_id for x in event.order.service_lines] == ["f1"]
    assert event.order.services == []  # names stay those of the order's body
    embedded = order(invoiced=True, services=[service("e1")])["data"]
    event = same_as_validated(build(embedded, fetched_services=fetched))
    assert event.order is not None and [x.service_id for x in event.order.service_lines] == ["e1"]
    # no services anywhere: no lines (unknown), as a webhook without them gives
    event = same_as_validated(build(order()["data"]))
    assert event.order is not None and event.order.service_lines == []


def test_which_polled_orders_have_their_services_read() -> None:
    assert wants_services(order(invoiced=True)["data"], Operation.UPDATE)
    assert wants_services(order(paid=True)["data"], Operation.UPDATE)
    assert not wants_services(order()["data"], Operation.UPDATE)  # an estimate
    assert not wants_services(order(invoiced=True, services=[])["data"], Operation.UPDATE)
    assert not wants_services(order(invoiced=True)["data"], Operation.DELETE)


def test_hostile_services_are_clamped_or_skipped_never_refused() -> None:
    hostile: list[Any] = [
        "not a service",
        None,
        7,
        {"name": "no id at all"},
        {"id": "x" * 101, "name": "over-long id"},
        {"id": "nul\x00id"},
        {"id": True},
        {"id": {"nested": 1}},
        {"id": "   "},
        service(
            "ok1",
            name="N\x00ame " + "z" * 500,
            authorizationStatus=5,
            totalCents=float("inf"),
            revivedFromId="r" * 101,
            deferredReason=7,
        ),
        service("ok1", name="a duplicate id: the first one counts"),
        service("ok2", totalCents=-500, authorizationStatus="DECLINED", deferredReason=" "),
        service(
            "ok3",
            totalCents=2**70,
            revivedFromId={"id": 1},
            excludedFromDeferred="yes",
            deferredReason="Declined",
        ),
        service("ok4", totalCents="1200", revivedFromId="old\x00"),
        {"id": 12345, "totalCents": 1e300, "name": None},
    ]
    adjusted: normalise.Adjusted = []
    data = order(invoiced=True, services=hostile)["data"]
    event = same_as_validated(build(data, adjusted))
    assert event.order is not None
    lines = {x.service_id: x for x in event.order.service_lines}
    assert list(lines) == ["ok1", "ok2", "ok3", "ok4", "12345"]
    ok1 = lines["ok1"]
    assert ok1.name is not None and ok1.name.startswith("Name ") and len(ok1.name) == 200
    assert (ok1.authorization, ok1.total_cents, ok1.revived_from, ok1.deferred) == (
        None,
        0,
        None,
        False,
    )
    assert lines["ok2"].authorization is ServiceAuthorization.DECLINED
    assert (lines["ok2"].total_cents, lines["ok2"].deferred) == (0, False)
    assert (lines["ok3"].total_cents, lines["ok3"].deferred) == (0, True)
    assert (lines["ok4"].total_cents, lines["ok4"].revived_from) == (0, None)
    assert (lines["12345"].total_cents, lines["12345"].name) == (0, None)
    assert {("service_lines", "invalid_id"), ("service_lines", "invalid_revived_from")} <= set(
        adjusted
    )


def test_a_huge_services_list_is_cut_to_its_bound_and_noted_once() -> None:
    adjusted: normalise.Adjusted = []
    many = [service(f"s{i}") for i in range(50_000)]
    event = same_as_validated(build(order(paid=True, services=many)["data"], adjusted))
    assert event.order is not None and len(event.order.service_lines) == 100
    assert adjusted.count(("service_lines", "cut")) == 1
    junk: list[Any] = [{"id": ["x"]}] * 50_000  # scanning stops: bounded work per order
    adjusted = []
    event = same_as_validated(build(order(paid=True, services=junk)["data"], adjusted))
    assert event.order is not None and event.order.service_lines == []
    assert adjusted == [("service_lines", "invalid_id")]


_any = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=120)
_services = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "id": _any | st.text(max_size=110) | st.integers(min_value=-(2**70), max_value=2**70),
            "name": _any,
            "authorizationStatus": _any | st.sampled_from(["Authorized", "Declined"]),
            "deferredReason": _any,
            "excludedFromDeferred": _any,
            "revivedFromId": _any,
            "totalCents": _any | st.integers(min_value=-(2**70), max_value=2**70),
            "totalCostCents": _any,
        },
    )
    | _any,
    max_size=6,
)


@given(_services)
def test_any_services_build_what_validation_builds(services: list[Any]) -> None:
    same_as_validated(build(order(invoiced=True)["data"], fetched_services=services))
    same_as_validated(build(order(invoiced=True, services=services)["data"]))


# appointments ----------------------------------------------------------------------------------


def appointment(**fields: Any) -> dict[str, Any]:
    return {
        "id": APPOINTMENT_ID,
        "companyId": "co_5e0f",
        "locationId": "loc_77aa",
        "orderId": ORDER_ID,
        "customerId": "c7d1e2f3-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
        "startDate": "2026-05-04T14:00:00.000Z",
        "endDate": "2026-05-04T15:00:00.000Z",
        "cancelationNote": None,
        "sendReminder": False,
        "createdDate": "2026-05-01T15:10:00.000Z",
        "updatedDate": None,
        "meta": {"version": 1},
        **fields,
    }


def appointment_event(data: dict[str, Any], operation: Operation = Operation.INSERT) -> OrderEvent:
    assert normalise.appointment_unusable(data, operation) is None
    draft = normalise.appointment_draft(
        TENANT,
        data,
        operation=operation,
        source=OrderSource.WEBHOOK,
        contact=known_contact("appointment", data),
        now=NOW,
        ids=LEAD_IDS,
    )
    return same_as_validated(draft)


def test_an_appointment_is_an_event_of_its_orders_lead() -> None:
    event = appointment_event(appointment(sendReminder=True))
    assert event.entity == "appointment" and event.order is None
    assert event.lead_id == lead_id_for_order(LEAD_IDS, TENANT, ORDER_ID)
    assert event.event_id == f"shopmonkey:appointment:{APPOINTMENT_ID}:1"
    appt = event.appointment
    assert appt is not None
    assert appt.appointment_id == APPOINTMENT_ID and appt.version == 1
    assert appt.start_at == datetime(2026, 5, 4, 14, tzinfo=UTC)
    assert appt.end_at == datetime(2026, 5, 4, 15, tzinfo=UTC)
    assert (appt.cancelled, appt.shopmonkey_reminder) == (False, True)
    assert event.customer.customer_id == "c7d1e2f3-4a5b-4c6d-8e9f-0a1b2c3d4e5f"
    # an integer order id is the same lead as its string (as for orders)
    numeric = appointment_event(appointment(orderId=42))
    assert numeric.lead_id == lead_id_for_order(LEAD_IDS, TENANT, "42")
    # without meta.version: the change time, as for orders
    moved = appointment_event(
        appointment(meta=None, updatedDate="2026-05-02T09:00:00Z", startDate="2026-05-05T09:00Z")
    )
    assert moved.event_id == f"shopmonkey:appointment:{APPOINTMENT_ID}:2026-05-02T09:00:00.000Z"
    assert moved.appointment is not None and moved.appointment.version is None


def test_cancelled_and_deleted_appointments() -> None:
    cancelled = appointment_event(appointment(cancelationNote="Customer called"), Operation.UPDATE)
    assert cancelled.appointment is not None and cancelled.appointment.cancelled
    deleted = appointment_event(appointment(), Operation.DELETE)
    assert deleted.appointment is not None and deleted.appointment.cancelled
    # a bare DELETE (no startDate): still the cancellation, started at its change time
    bare = {"id": APPOINTMENT_ID, "orderId": ORDER_ID, "updatedDate": "2026-05-03T10:00:00Z"}
    gone = appointment_event(bare, Operation.DELETE)
    assert gone.appointment is not None and gone.appointment.cancelled
    assert gone.appointment.start_at == datetime(2026, 5, 3, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"orderId": None},
        {"orderId": ""},
        {"orderId": "  "},
        {"orderId": {"id": 1}},
        {"orderId": True},
        {"orderId": [ORDER_ID]},
    ],
)
def test_an_appointment_without_an_order_belongs_to_no_lead(fields: dict[str, Any]) -> None:
    data = appointment(**fields)
    assert "without orderId" in (normalise.appointment_unusable(data, Operation.INSERT) or "")


def test_hostile_appointments() -> None:
    for order_id, reason in (("o" * 101, "longer than 100"), ("ord\x00", "NUL")):
        with pytest.raises(InvalidPayload, match=reason):
            normalise.appointment_unusable(appointment(orderId=order_id), Operation.INSERT)
    for start in ("tomorrow", 12, None, {"at": 1}, "2026-13-45T99:00:00Z"):
        data = appointment(startDate=start)
        assert normalise.appointment_unusable(data, Operation.UPDATE) == (
            "appointment without a readable startDate"
        )
    odd = appointment_event(
        appointment(endDate="never", sendReminder="yes", cancelationNote=5, meta={"version": 2**64})
    )
    appt = odd.appointment
    assert appt is not None and appt.end_at is None and appt.version is None
    assert (appt.cancelled, appt.shopmonkey_reminder) == (False, False)
    # a naive start is read as UTC; an offset one converted
    local = appointment_event(appointment(startDate="2026-05-04T09:00:00-05:00"))
    assert local.appointment is not None
    assert local.appointment.start_at == datetime(2026, 5, 4, 14, tzinfo=UTC)
