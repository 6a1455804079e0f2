"""The envelope parser and the normaliser on realistic v3 payloads (reference §1.3–1.6)."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import lead_id_for_form, lead_id_for_order
from schemas.events import Customer, Operation, OrderEvent, OrderSource
from services.ingest.domain import normalise
from services.ingest.domain.demo_mode import admits_email
from services.ingest.domain.envelope import parse_envelope
from services.ingest.domain.website_form import WebsiteLeadForm, website_event
from services.ingest.errors import InvalidPayload
from services.ingest.service_layer.order_events import known_contact
from tests.support.deployment_secrets import LEAD_IDS
from tests.support.shopmonkey_payloads import (
    CUSTOMER_ID,
    CUSTOMER_RECORD,
    CUSTOMER_UPDATE,
    ORDER_ID,
    ORDER_INSERT,
    order,
)

TENANT = uuid.UUID("11111111-2222-4333-8444-555555555555")
NOW = datetime(2026, 5, 1, 15, 5, tzinfo=UTC)


def order_event(doc: dict, **kw) -> OrderEvent:  # type: ignore[no-untyped-def]
    env = parse_envelope(doc)
    return normalise.order_draft(
        TENANT,
        env.data,
        operation=env.operation,
        source=kw.get("source", OrderSource.WEBHOOK),
        contact=known_contact("order", env.data),
        now=NOW,
        ids=LEAD_IDS,
    ).event()


def test_order_insert_becomes_a_new_lead_event() -> None:
    event = order_event(ORDER_INSERT)
    assert event.event_id == f"shopmonkey:order:{ORDER_ID}:1"
    assert event.lead_id == lead_id_for_order(LEAD_IDS, TENANT, ORDER_ID)
    assert event.entity == "order" and event.operation is Operation.INSERT
    assert event.occurred_at == datetime(2026, 5, 1, 15, 4, 5, tzinfo=UTC)  # createdDate
    snap = event.order
    assert snap is not None
    assert (snap.order_id, snap.number, snap.status, snap.version) == (
        ORDER_ID,
        "1042",
        "Estimate",
        1,
    )
    assert snap.vehicle == "2019 Honda Civic" and snap.updated_at is None
    assert event.customer.customer_id == CUSTOMER_ID
    assert (event.customer.first_name, event.customer.last_name) == ("Jane", "Doe")
    assert event.customer.email is None  # the order carries no contact details
    # The contract round-trips (what goes to Kafka is what consumers read).
    assert OrderEvent.from_bytes(event.to_bytes()) == event


def test_same_order_same_lead_across_versions_and_sources() -> None:
    first = order_event(ORDER_INSERT)
    later = order_event(
        order(
            "UPDATE",
            status="RepairOrder",
            authorized=True,
            updatedDate="2026-05-03T08:00:00Z",
            meta={"version": 4},
        ),
        source=OrderSource.POLL,
    )
    assert later.lead_id == first.lead_id
    assert later.event_id == f"shopmonkey:order:{ORDER_ID}:4" != first.event_id
    assert (
        later.order is not None and later.order.authorized and later.order.status == "RepairOrder"
    )
    other_tenant = normalise.order_draft(
        uuid.uuid4(),
        ORDER_INSERT["data"],
        operation=Operation.INSERT,
        source=OrderSource.WEBHOOK,
        contact=normalise.contact_of_record({}),  # no customer at all
        now=NOW,
        ids=LEAD_IDS,
    ).event()
    assert other_tenant.lead_id != first.lead_id


def test_event_id_falls_back_to_the_change_time_without_meta_version() -> None:
    updated = order("UPDATE", meta={"userId": "u"}, updatedDate="2026-05-02T10:00:00+02:00")
    event = order_event(updated)
    assert event.event_id == f"shopmonkey:order:{ORDER_ID}:2026-05-02T08:00:00.000Z"
    inserted = order("INSERT", meta=None)
    assert order_event(inserted).event_id.endswith(":2026-05-01T15:04:05.000Z")  # createdDate
    # Webhook and poll read the same instant in different spellings: same id.
    spelled = order("UPDATE", meta={}, updatedDate="2026-05-02T08:00:00.000000Z")
    assert order_event(spelled).event_id == event.event_id


def test_delete_and_numeric_fields_of_older_schemas() -> None:
    doc = {
        "apiVersion": 3,
        "operation": "DELETE",
        "table": "order",
        "data": {"id": ORDER_ID, "number": 1042},
    }
    event = order_event(doc)
    assert event.operation is Operation.DELETE and event.event_id.endswith(":deleted")
    assert event.order is not None and event.order.deleted and event.order.number == "1042"
    assert event.occurred_at == NOW


def test_customer_update_has_no_lead_and_carries_the_customer() -> None:
    env = parse_envelope(CUSTOMER_UPDATE)
    fetched = normalise.contact_of_record(CUSTOMER_RECORD)  # what complete_contact merges
    contact = normalise.merge_contact(known_contact("customer", env.data), fetched)
    event = normalise.customer_draft(
        TENANT,
        env.data,
        operation=env.operation,
        source=OrderSource.WEBHOOK,
        contact=contact,
        now=NOW,
    ).event()
    assert env.diff == ("lastName", "updatedDate")
    assert event.lead_id is None and event.entity == "customer" and event.order is None
    assert event.event_id == f"shopmonkey:customer:{CUSTOMER_ID}:7"
    assert event.customer == Customer(
        customer_id=CUSTOMER_ID,
        first_name="Jane",
        last_name="Smith",
        email="Jane.Smith@Example.com",
        phone="+12025550123",
        preferred="sms",  # the record's preferredContactMethod "SMS"
    )


def test_contact_details_prefer_primary_then_mobile() -> None:
    record = copy.deepcopy(CUSTOMER_RECORD)
    for entry in record["emails"] + record["phoneNumbers"]:
        entry["primary"] = False
    c = Customer(**known_contact("customer", record))
    assert c.email == "old.jane@example.com"  # no primary: the first
    assert c.phone == "+12025550123"  # no primary: the mobile one
    assert Customer(
        **known_contact("customer", {"id": "x", "emails": [], "phoneNumbers": None})
    ) == Customer(customer_id="x")
    assert normalise.contact_lacks(known_contact("order", ORDER_INSERT["data"]))


def test_embedded_customer_in_an_order_is_used() -> None:
    doc = order(customer=CUSTOMER_RECORD)
    contact = known_contact("order", doc["data"])
    c = Customer(**contact)
    assert (c.email, c.phone, c.last_name) == ("Jane.Smith@Example.com", "+12025550123", "Smith")
    assert not normalise.contact_lacks(contact)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ([], "JSON object"),
        ({**ORDER_INSERT, "apiVersion": None}, "apiVersion"),
        ({**ORDER_INSERT, "apiVersion": True}, "apiVersion"),
        ({**ORDER_INSERT, "operation": "UPSERT"}, "operation"),
        ({**ORDER_INSERT, "table": ""}, "table"),
        ({**ORDER_INSERT, "data": "x"}, "data"),
        ({**ORDER_INSERT, "diff": "status"}, "diff"),
        ({**ORDER_INSERT, "data": {"number": "1"}}, "data.id"),
        ({**ORDER_INSERT, "data": {"id": ""}}, "data.id"),
        ({k: v for k, v in ORDER_INSERT.items() if k != "operation"}, "operation"),
    ],
)
def test_bad_envelopes_name_the_problem(doc: object, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        parse_envelope(doc)


def test_other_tables_parse_without_an_id_and_api_version_may_be_a_number() -> None:
    env = parse_envelope({"apiVersion": 3, "operation": "update", "table": "Vehicle", "data": {}})
    assert (env.api_version, env.table, env.operation) == ("3", "vehicle", Operation.UPDATE)


def test_polled_operation() -> None:
    data = ORDER_INSERT["data"]
    assert normalise.polled_operation(data) is Operation.INSERT
    assert (
        normalise.polled_operation({**data, "updatedDate": data["createdDate"]}) is Operation.INSERT
    )
    assert normalise.polled_operation({**data, "updatedDate": "2026-05-02T00:00:00Z"}) is (
        Operation.UPDATE
    )
    assert normalise.polled_operation({**data, "deleted": True}) is Operation.DELETE


def test_demo_mode_admits_only_whitelisted_emails() -> None:
    wl = frozenset({"sam@example.com"})
    assert admits_email(" SAM@example.com ", demo_mode=True, whitelist=wl)
    assert not admits_email("jane@gmail.com", demo_mode=True, whitelist=wl)
    assert not admits_email(None, demo_mode=True, whitelist=wl)
    assert admits_email("jane@gmail.com", demo_mode=False, whitelist=wl)


def test_website_form_becomes_an_idempotent_website_lead() -> None:
    form = WebsiteLeadForm.parse(
        {
            "submissionId": "web-123",
            "name": "Sam Lee",
            "email": "sam@example.com",
            "phone": "202-555-0123",
            "vehicle": "2020 Mazda 3",
            "service": "Window tint",
        }
    )
    event = website_event(TENANT, form, now=NOW, ids=LEAD_IDS)
    assert event.lead_id == lead_id_for_form(LEAD_IDS, TENANT, "web-123")
    assert event.event_id == f"website:{TENANT}:web-123"
    assert (event.source, event.entity, event.operation) == (
        OrderSource.WEBSITE,
        "website_form",
        Operation.INSERT,
    )
    assert event.customer == Customer(
        first_name="Sam", last_name="Lee", email="sam@example.com", phone="+12025550123"
    )
    assert event.service_of_interest == "Window tint"
    again = website_event(TENANT, form, now=datetime(2026, 6, 1, tzinfo=UTC), ids=LEAD_IDS)
    assert (again.event_id, again.lead_id) == (event.event_id, event.lead_id)


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"email": "a@b.co"}, "submission_id"),
        ({"submission_id": "", "email": "a@b.co"}, "submission_id"),
        ({"submission_id": "s1"}, "email or phone is required"),
        ({"submission_id": "s1", "email": "not-an-email"}, "email"),
        ({"submission_id": "s1", "phone": "12"}, "phone"),
        ({"submission_id": "x" * 201, "email": "a@b.co"}, "submission_id"),
        ({"submission_id": "s1", "email": "a@b.co", "name": "n" * 201}, "name: String should"),
        ({"submission_id": "s1", "email": "a@b.co", "vehicle": "v" * 201}, "vehicle: String"),
        ({"submission_id": "s1", "email": "a@b.co", "phone": "1" * 41}, "phone: String should"),
        ({"submission_id": "s1", "email": "a@b.co", "name": "Jo\x00e"}, "name: contains a NUL"),
        ({"submission_id": "s\x001", "email": "a@b.co"}, "submission_id: contains a NUL"),
        ({"submission_id": "s1", "phone": "+1" + "9" * 38}, "phone is not a valid phone"),
        ("a string", "JSON object"),
    ],
)
def test_website_form_validation(doc: object, reason: str) -> None:
    with pytest.raises(InvalidPayload, match=reason):
        WebsiteLeadForm.parse(doc)


_any = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.text(max_size=300)
    | st.text(st.sampled_from("ab \x00\u00b2+1-0123456789"), max_size=40)
)
_stamps = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.none() | st.timezones(),
).map(lambda moment: moment.isoformat())
_entries = st.lists(
    st.fixed_dictionaries(
        {}, optional={"email": _any, "number": _any, "primary": _any, "type": _any}
    ),
    max_size=3,
)
_customers = st.fixed_dictionaries(
    {},
    optional={
        "id": _any,
        "firstName": _any,
        "lastName": _any,
        "email": _any,
        "phone": _any | st.from_regex(r"\+?1? ?\(?5\d\d\)? ?\d{3}-\d{4}", fullmatch=True),
        "emails": _entries | _any,
        "phoneNumbers": _entries | _any,
    },
)
_records = st.fixed_dictionaries(
    {"id": st.uuids().map(str) | st.integers(min_value=1, max_value=2**70)},
    optional={
        "number": _any,
        "status": _any,
        "createdDate": _stamps | _any,
        "updatedDate": _stamps | _any,
        "orderCreatedDate": _stamps | _any,
        "totalCostCents": _any,
        "authorized": _any,
        "invoiced": _any,
        "paid": _any,
        "archived": _any,
        "deleted": _any,
        "generatedVehicleName": _any,
        "generatedCustomerName": _any,
        "customerId": _any,
        "services": st.lists(st.fixed_dictionaries({}, optional={"name": _any}), max_size=3)
        | st.lists(st.just({"name": "s"}), min_size=99, max_size=102)
        | _any,
        "meta": st.fixed_dictionaries({}, optional={"version": _any}) | _any,
        "appointmentDates": st.lists(_stamps | _any, max_size=3) | _any,
        "customer": _customers | _any,
        "firstName": _any,
        "emails": _entries | _any,
        "phoneNumbers": _entries | _any,
    },
)


@given(_records, st.sampled_from(Operation), st.sampled_from(OrderSource))
def test_what_the_normaliser_builds_is_what_validation_builds(
    data: dict, operation: Operation, source: OrderSource
) -> None:
    """The normaliser assembles events without validating them again (drafts, `trusted`): for
    any record, however odd its fields, validating the event it built must change nothing,
    neither the values nor a byte of the record on the topic, whether it is published as the
    draft (the webhook path) or as its model (the poller)."""
    try:
        contact = normalise.merge_contact(
            normalise.contact_of_order(data), normalise.contact_of_record(data)
        )
    except InvalidPayload:  # a customer id over its bound: refused, nothing built
        return
    assert Customer.model_validate(contact).model_dump() == contact
    for draft in (
        normalise.order_draft(
            TENANT, data, operation=operation, source=source, contact=contact, now=NOW, ids=LEAD_IDS
        ),
        normalise.customer_draft(
            TENANT, data, operation=operation, source=source, contact=contact, now=NOW
        ),
    ):
        event = draft.event()
        validated = OrderEvent.model_validate(event.model_dump())
        assert validated == event
        wire = validated.model_dump_json().encode()
        assert validated.to_bytes() == event.to_bytes() == draft.to_bytes() == wire
        assert (draft.event_id, draft.tenant_id, draft.lead_id) == (
            event.event_id,
            event.tenant_id,
            event.lead_id,
        )
        assert (draft.source, draft.entity, draft.customer_email) == (
            event.source,
            event.entity,
            event.customer.email,
        )


def test_overlong_record_ids_and_versions_are_refused_or_ignored() -> None:
    with pytest.raises(InvalidPayload, match=r"data\.id is longer than 100"):
        normalise.facts_of("order", {"id": "x" * 101}, Operation.INSERT)
    with pytest.raises(InvalidPayload, match=r"data\.id contains a NUL"):
        normalise.facts_of("order", {"id": "ord\x001"}, Operation.INSERT)
    with pytest.raises(InvalidPayload, match="customerId is longer than 100"):
        known_contact("order", order(customerId="c" * 101)["data"])
    with pytest.raises(InvalidPayload, match="customer id is longer than 100"):
        known_contact("customer", {**CUSTOMER_RECORD, "id": "c" * 101})
    for version in ("9" * 30, 2**64, -1, "²"):
        doc = order(meta={"version": version}, createdDate="2026-05-01T15:04:05Z")
        assert order_event(doc).event_id.endswith(":2026-05-01T15:04:05.000Z")
    for total in (float("inf"), float("nan"), 1e300, 2**64, True, "1200"):
        snapshot = order_event(order(totalCostCents=total)).order
        assert snapshot is not None and snapshot.total_cents == 0
    assert order_event(order(totalCostCents=1299.9)).order.total_cents == 1299  # type: ignore[union-attr]


def test_display_fields_are_cut_never_refused_and_each_cut_is_noted() -> None:
    doc = order(
        generatedVehicleName="V" * 5000,
        generatedCustomerName="N" * 300 + " " + "L\x00" * 300,
        status="S" * 60,
        number="9" * 60,
        services=[{"name": "x" * 300}] + [{"name": f"svc {i}"} for i in range(10_000)],
    )
    data = parse_envelope(doc).data
    adjusted: normalise.Adjusted = []
    contact = known_contact("order", data, adjusted)
    event = normalise.order_draft(
        TENANT,
        data,
        operation=Operation.INSERT,
        source=OrderSource.WEBHOOK,
        contact=contact,
        now=NOW,
        ids=LEAD_IDS,
        adjusted=adjusted,
    ).event()
    snap = event.order
    assert snap is not None
    assert snap.vehicle == "V" * 200 and snap.status == "S" * 50 and snap.number == "9" * 50
    assert len(snap.services) == 100 and snap.services[0] == "x" * 200
    assert event.customer.first_name == "N" * 200 and event.customer.last_name == "L" * 200
    assert OrderEvent.model_validate(event.model_dump()) == event  # within every bound
    assert set(adjusted) == {
        ("vehicle", "cut"),
        ("status", "cut"),
        ("number", "cut"),
        ("services", "cut"),
        ("first_name", "cut"),
        ("last_name", "nul_removed"),
        ("last_name", "cut"),
    }


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"phone": "+1" + "9" * 38}, "phone", "invalid_phone"),
        ({"phone": "+1 555 123 4567"}, "phone", "invalid_phone"),
        ({"phone": "²²²"}, "phone", "invalid_phone"),
        ({"email": "x" * 400 + "@example.com"}, "email", "invalid_email"),
        ({"email": "jane\x00@example.com"}, "email", "invalid_email"),
        ({"email": "no-at-sign"}, "email", "invalid_email"),
    ],
)
def test_contacts_that_cannot_be_one_are_dropped_with_a_reason(
    record: dict, field: str, reason: str
) -> None:
    adjusted: normalise.Adjusted = []
    contact = normalise.contact_of_record({"id": "c1", **record}, adjusted)
    assert contact[field] is None
    assert adjusted == [(field, reason)]


def test_a_website_phone_that_is_no_number_is_dropped_when_the_email_reaches_the_lead() -> None:
    form = WebsiteLeadForm.parse(
        {"submissionId": "w-39", "email": "sam@example.com", "phone": "+1" + "9" * 38}
    )
    adjusted: normalise.Adjusted = []
    event = website_event(TENANT, form, now=NOW, ids=LEAD_IDS, adjusted=adjusted)
    assert event.customer.phone is None and event.customer.email == "sam@example.com"
    assert adjusted == [("phone", "invalid_phone")]


def test_an_orders_appointment_is_the_latest_readable_of_its_appointment_dates() -> None:
    from services.ingest.domain.normalise import appointment_date

    dates = ["2026-03-10T15:00:00Z", "not a date", 42, "2026-03-12T09:30:00-05:00", None]
    assert appointment_date(dates) == datetime(2026, 3, 12, 14, 30, tzinfo=UTC)
    assert appointment_date([]) is None and appointment_date("2026-03-10T15:00:00Z") is None
    assert appointment_date(["2026-01-01T00:00:00Z"] * 10_000) is not None  # bounded, no error
