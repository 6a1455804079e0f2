"""Event contracts: JSON Schema files match the models; ids are deterministic; bad records
raise ContractError with a reason (the DLQ path)."""

from __future__ import annotations

import dataclasses
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    CONTRACTS,
    Channel,
    OrderEvent,
    TouchPointCommand,
    bounds,
    command_id_for,
    lead_id_for_form,
    lead_id_for_order,
)
from schemas.base import LeadState
from schemas.events import (
    Appointment,
    ContactSignal,
    Customer,
    LeadChanged,
    LeadSnapshot,
    Operation,
    OrderSnapshot,
    OrderSource,
    OutcomeStatus,
    Recipient,
    ServiceAuthorization,
    ServiceLine,
    SignalKind,
    TouchPointOutcome,
)
from schemas.generate import rendered
from services.common.errors import ContractError
from services.common.kafka.codec import decode
from tests.support.deployment_secrets import ID_SECRET, LEAD_IDS

TENANT = uuid.UUID("11111111-2222-3333-4444-555555555555")


def test_committed_json_schema_matches_models() -> None:
    for path, text in rendered().items():
        assert path.exists(), f"{path.name} missing: run `make schemas`"
        assert path.read_text() == text, f"{path.name} drifted from its model: run `make schemas`"


def test_every_contract_carries_schema_version() -> None:
    for name, model in CONTRACTS.items():
        schema = model.json_schema()
        assert "schema_version" in schema["properties"], name
        assert (
            "schema_version" in schema.get("required", [])
            or schema["properties"]["schema_version"].get("default") == 1
        )


def test_ids_are_deterministic_and_distinct() -> None:
    a = lead_id_for_order(LEAD_IDS, TENANT, "order-1")
    assert a == lead_id_for_order(LEAD_IDS, TENANT, "order-1")
    assert a != lead_id_for_order(LEAD_IDS, TENANT, "order-2")
    assert a != lead_id_for_order(LEAD_IDS, uuid.uuid4(), "order-1")
    assert lead_id_for_form(LEAD_IDS, TENANT, "order-1") != a
    c = command_id_for(a, 0, Channel.EMAIL)
    assert c == command_id_for(a, 0, Channel.EMAIL)
    assert len({c, command_id_for(a, 0, Channel.SMS), command_id_for(a, 1, Channel.EMAIL)}) == 3
    # Pinned: the same secret and order give this id on every run, retry and replay (the
    # first 122 bits of HMAC-SHA256(ID_SECRET, "<tenant>:shopmonkey-order:<order>")).
    assert str(a) == "dd0b9132-00ca-8748-8e58-1a325311db85"
    digest = hmac.digest(
        ID_SECRET.encode(), f"{TENANT}:shopmonkey-order:order-1".encode(), "sha256"
    )
    assert a.bytes[:6] == digest[:6] and a.bytes[10:] == digest[10:16]
    assert a.version == 8 and a.variant == uuid.RFC_4122


@given(st.binary(min_size=32, max_size=200), st.text(max_size=300))
def test_a_lead_id_is_the_hmac_of_its_name_under_any_secret(secret: bytes, name: str) -> None:
    """The pads are hashed once per key (`HmacSha256`): the id is still HMAC-SHA256 of the name
    under the secret, for secrets shorter and longer than SHA-256's 64-byte block."""
    from schemas.base import LeadIdKey

    got = LeadIdKey(secret).derive(name)
    digest = hmac.digest(secret, name.encode(), "sha256")
    assert got.bytes[:6] == digest[:6] and got.bytes[10:] == digest[10:16]
    assert got.version == 8 and got.variant == uuid.RFC_4122


def test_lead_ids_cannot_be_computed_without_the_secret() -> None:
    """The old scheme (UUIDv5 under the namespace in the source) no longer gives the id, nor
    does another deployment's secret."""
    from schemas.base import ID_NAMESPACE, MIN_ID_SECRET_BYTES, LeadIdKey

    lead = lead_id_for_order(LEAD_IDS, TENANT, "1001")
    assert lead != uuid.uuid5(ID_NAMESPACE, f"{TENANT}:shopmonkey-order:1001")
    other = LeadIdKey(b"another deployment's secret, 32+ bytes long")
    assert lead != lead_id_for_order(other, TENANT, "1001")
    assert ID_SECRET not in repr(LEAD_IDS)
    with pytest.raises(ValueError, match="at least"):
        LeadIdKey(b"x" * (MIN_ID_SECRET_BYTES - 1))


@given(st.text(max_size=300))
def test_fast_id_equals_uuid5_for_every_name(name: str) -> None:
    """`id_for` reimplements uuid5 for speed: it must agree on every name, and be a UUID like
    any other (version 5, RFC 4122 variant, equal, hashable, printable)."""
    from schemas.base import ID_NAMESPACE, id_for

    expected = uuid.uuid5(ID_NAMESPACE, name)
    got = id_for(name)
    assert got == expected and hash(got) == hash(expected)
    assert str(got) == str(expected) and got.bytes == expected.bytes
    assert got.version == 5 and got.variant == uuid.RFC_4122


_texts = st.none() | st.text(max_size=40)
#: a phone as its contract bounds it (`bounds.PHONE`, 32): `_texts` went over it now and then
_phones = st.none() | st.text(max_size=bounds.PHONE)
_moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.timezones()
)
_order_events = st.builds(
    OrderEvent,
    event_id=st.text(min_size=1, max_size=300),
    tenant_id=st.uuids(),
    lead_id=st.none() | st.uuids(),
    source=st.sampled_from(OrderSource),
    entity=st.sampled_from(["order", "customer", "website_form", "appointment"]),
    operation=st.sampled_from(Operation),
    occurred_at=_moments,
    ingested_at=_moments,
    order=st.none()
    | st.builds(
        OrderSnapshot,
        order_id=st.text(min_size=1, max_size=40),
        number=_texts,
        status=st.text(max_size=20),
        authorized=st.booleans(),
        appointment_at=st.none() | _moments,
        total_cents=st.integers(min_value=-(2**70), max_value=2**70),
        vehicle=_texts,
        services=st.lists(st.text(max_size=20), max_size=3),
        service_lines=st.lists(
            st.builds(
                ServiceLine,
                service_id=st.text(min_size=1, max_size=20),
                name=_texts,
                authorization=st.none() | st.sampled_from(ServiceAuthorization),
                deferred=st.booleans(),
                revived_from=st.none() | st.text(min_size=1, max_size=20),
                total_cents=st.integers(min_value=0, max_value=2**63 - 1),
            ),
            max_size=3,
        ),
        version=st.none() | st.integers(min_value=0, max_value=2**70),
        created_at=st.none() | _moments,
    ),
    appointment=st.none()
    | st.builds(
        Appointment,
        appointment_id=st.text(min_size=1, max_size=20),
        start_at=_moments,
        end_at=st.none() | _moments,
        cancelled=st.booleans(),
        shopmonkey_reminder=st.booleans(),
        version=st.none() | st.integers(min_value=0, max_value=2**70),
    ),
    customer=st.builds(Customer, email=_texts, phone=_phones, first_name=_texts),
    service_of_interest=_texts,
    plan_touchpoints=st.booleans(),
)


@given(_order_events)
def test_order_event_bytes_are_what_pydantic_writes(event: OrderEvent) -> None:
    """OrderEvent serialises with orjson for speed; the bytes must be pydantic's own, for
    any text (escapes, non-ASCII), zone, id and number, and read back to the same event."""
    assert event.to_bytes() == event.model_dump_json().encode()
    assert OrderEvent.from_bytes(event.to_bytes()) == event


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
_customers = st.builds(
    Customer,
    customer_id=st.none() | st.text(min_size=1, max_size=20),
    email=_texts,
    phone=_phones,
    first_name=_texts,
    preferred=st.sampled_from([None, "sms", "email", "all"]),
)
_commands = st.builds(
    TouchPointCommand,
    command_id=st.uuids(),
    tenant_id=st.uuids(),
    lead_id=st.uuids(),
    step_index=st.integers(min_value=0, max_value=2**70),
    channel=st.sampled_from(Channel),
    template=st.text(min_size=1, max_size=40),
    due_at=_moments,
    issued_at=_moments,
    recipient=st.builds(Recipient, email=_texts, phone=_phones, first_name=_texts),
    context=st.dictionaries(st.text(max_size=12), _json_values, max_size=5),
    record_only=st.booleans(),
    campaign=_texts,
)
_changes = st.builds(
    LeadChanged,
    tenant_id=st.uuids(),
    lead_id=st.uuids(),
    from_state=st.none() | st.sampled_from(LeadState),
    to_state=st.sampled_from(LeadState),
    reason=st.text(max_size=40),
    changed_at=_moments,
    lead=st.builds(
        LeadSnapshot,
        lead_id=st.uuids(),
        tenant_id=st.uuids(),
        state=st.sampled_from(LeadState),
        source=st.sampled_from(OrderSource),
        version=st.integers(min_value=0, max_value=2**70),
        shopmonkey_order_id=st.none() | st.text(min_size=1, max_size=20),
        customer=_customers,
        vehicle=_texts,
        services=st.lists(st.text(min_size=1, max_size=20), max_size=3),
        created_at=_moments,
        updated_at=_moments,
        last_touch_at=st.none() | _moments,
        touches_sent=st.integers(min_value=0, max_value=2**70),
        declined_cents=st.integers(min_value=0, max_value=10**9),
    ),
)
_outcomes = st.builds(
    TouchPointOutcome,
    command_id=st.uuids(),
    tenant_id=st.uuids(),
    lead_id=st.uuids(),
    step_index=st.integers(min_value=0, max_value=100),
    channel=st.sampled_from(Channel),
    status=st.sampled_from(OutcomeStatus),
    reason=st.text(max_size=40),
    decided_at=_moments,
    provider_message_id=_texts,
    deferred_until=st.none() | _moments,
    campaign=_texts,
)
_signals = st.builds(
    ContactSignal,
    signal_id=st.text(min_size=1, max_size=40),
    tenant_id=st.uuids(),
    lead_id=st.none() | st.uuids(),
    kind=st.sampled_from(SignalKind),
    channel=st.none() | st.sampled_from(Channel),
    contact=_texts,
    occurred_at=_moments,
    source=st.text(min_size=1, max_size=20),
    detail=_texts,
)


@given(_commands | _changes | _outcomes | _signals | _order_events.map(lambda e: e.customer))
def test_every_contracts_bytes_are_what_pydantic_writes(event: Any) -> None:
    """Every contract serialises with orjson (`Event.to_bytes`); the bytes must be pydantic's
    own for any text, zone, id, number and context a command carries (integers beyond 64 bits
    go to pydantic itself), and read back to the same record."""
    assert event.to_bytes() == event.model_dump_json().encode()
    assert type(event).from_bytes(event.to_bytes()) == event


def test_what_orjson_would_write_differently_goes_to_pydantic() -> None:
    """A context value orjson would write unlike pydantic (a dataclass: orjson leaves out its
    private fields) or not at all (an integer beyond 64 bits) is written by pydantic."""

    @dataclasses.dataclass
    class Facts:
        kind: str
        _private: int = 1

    for context, written in (({"facts": Facts("declined")}, b'"_private":1'), ({"n": 2**70}, b"")):
        command = TouchPointCommand(
            command_id=uuid.uuid4(),
            tenant_id=TENANT,
            lead_id=uuid.uuid4(),
            step_index=0,
            channel=Channel.EMAIL,
            template="t",
            due_at=datetime(2026, 1, 1, tzinfo=UTC),
            issued_at=datetime(2026, 1, 1, tzinfo=UTC),
            recipient=Recipient(email="a@example.com"),
            context=context,
        )
        assert command.to_bytes() == command.model_dump_json().encode()
        assert written in command.to_bytes()


def _order_event() -> OrderEvent:
    now = datetime(2026, 5, 1, 15, 4, 5, tzinfo=UTC)
    return OrderEvent(
        event_id="shopmonkey:order:o1:1",
        tenant_id=TENANT,
        lead_id=lead_id_for_order(LEAD_IDS, TENANT, "o1"),
        source="webhook",
        entity="order",
        operation="insert",
        occurred_at=now,
        ingested_at=now,
        order={"order_id": "o1", "status": "Estimate"},
        customer={"email": "jane@example.com"},
    )


def test_round_trip_bytes() -> None:
    event = _order_event()
    assert decode(OrderEvent, event.to_bytes()) == event


def test_unknown_fields_are_tolerated_for_forward_compatibility() -> None:
    data = json.loads(_order_event().to_bytes())
    data["added_in_v2"] = {"x": 1}
    assert decode(OrderEvent, json.dumps(data)).event_id == "shopmonkey:order:o1:1"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "OrderEvent"),
        (None, "empty record value"),
        (b"{}", "event_id"),
        (b'{"schema_version": 2}', "schema_version"),
    ],
)
def test_bad_records_raise_contract_error_with_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        decode(OrderEvent, raw)


def test_naive_timestamps_are_rejected() -> None:
    data = json.loads(_order_event().to_bytes())
    data["occurred_at"] = "2026-05-01T15:04:05"
    with pytest.raises(ContractError, match="occurred_at"):
        decode(OrderEvent, json.dumps(data))


def test_command_requires_positive_step_and_known_channel() -> None:
    with pytest.raises(ContractError, match="channel"):
        decode(
            TouchPointCommand,
            json.dumps(
                {
                    "command_id": str(uuid.uuid4()),
                    "tenant_id": str(TENANT),
                    "lead_id": str(uuid.uuid4()),
                    "step_index": 0,
                    "channel": "fax",
                    "template": "t",
                    "due_at": "2026-05-01T15:04:05Z",
                    "issued_at": "2026-05-01T15:04:05Z",
                    "recipient": {},
                }
            ),
        )


def test_trusted_builds_what_validation_builds_defaults_included() -> None:
    """`trusted` skips validation for values taken from validated domain objects: the record
    it produces must be byte-identical to the validated one, with every default filled."""
    from schemas.base import trusted

    event = _order_event()
    fields = {name: getattr(event, name) for name in OrderEvent.model_fields}
    assert trusted(OrderEvent, **fields).to_bytes() == event.to_bytes()
    now = datetime(2026, 5, 1, 15, 4, 5, tzinfo=UTC)
    lead = lead_id_for_order(LEAD_IDS, TENANT, "o1")
    given = {
        "command_id": command_id_for(lead, 0, Channel.EMAIL),
        "tenant_id": TENANT,
        "lead_id": lead,
        "step_index": 0,
        "channel": Channel.EMAIL,
        "template": "welcome",
        "due_at": now,
        "issued_at": now,
        "recipient": {"email": "jane@example.com"},
    }
    validated = TouchPointCommand(**given)
    fast = trusted(TouchPointCommand, **given | {"recipient": validated.recipient})
    assert fast.to_bytes() == validated.to_bytes()
    assert fast == validated
    assert TouchPointCommand.from_bytes(fast.to_bytes()) == validated
    with pytest.raises(TypeError, match=r"TouchPointCommand\.lead_id is required"):
        trusted(TouchPointCommand, **{k: v for k, v in given.items() if k != "lead_id"})
    with pytest.raises(TypeError, match="has no field"):
        trusted(TouchPointCommand, **given | {"no_such_field": 1})
    # fields with a default factory get their own value per instance, never a shared one
    snapshot = {k: v for k, v in fields["order"].__dict__.items() if k != "services"}
    one, two = trusted(OrderSnapshot, **snapshot), trusted(OrderSnapshot, **snapshot)
    assert one.services == [] and one.services is not two.services
