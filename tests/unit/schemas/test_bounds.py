"""Bounded contracts (DESIGN §11): every text of every event contract has a maximum length, and
a field that lands in a PostgreSQL column has that column's length. A change to either side
alone fails here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import String, Text
from sqlalchemy.orm import InstrumentedAttribute

from schemas import CONTRACTS
from services.common.db.models import JobExecution, Lead, ProviderEvent, Suppression

#: contract, dotted field path → the column it is stored in. `exact`: the bound must equal the
#: column's length (else it may be shorter: a phone in the ledger's recipient column).
STORED: list[tuple[str, str, InstrumentedAttribute[Any], bool]] = [
    ("LeadChanged", "lead.shopmonkey_order_id", Lead.shopmonkey_order_id, True),
    ("LeadChanged", "lead.order_number", Lead.order_number, True),
    ("LeadChanged", "lead.customer.customer_id", Lead.customer_id, True),
    ("LeadChanged", "lead.customer.first_name", Lead.first_name, True),
    ("LeadChanged", "lead.customer.last_name", Lead.last_name, True),
    ("LeadChanged", "lead.customer.email", Lead.email, True),
    ("LeadChanged", "lead.customer.phone", Lead.phone, True),
    ("LeadChanged", "lead.vehicle", Lead.vehicle, True),
    ("LeadChanged", "lead.lost_reason", Lead.lost_reason, True),
    ("OrderEvent", "order.order_id", Lead.shopmonkey_order_id, True),
    ("OrderEvent", "order.number", Lead.order_number, True),
    ("OrderEvent", "order.vehicle", Lead.vehicle, True),
    ("OrderEvent", "customer.customer_id", Lead.customer_id, True),
    ("OrderEvent", "customer.first_name", Lead.first_name, True),
    ("OrderEvent", "customer.last_name", Lead.last_name, True),
    ("OrderEvent", "customer.email", Lead.email, True),
    ("OrderEvent", "customer.phone", Lead.phone, True),
    ("TouchPointCommand", "template", JobExecution.template, True),
    ("TouchPointCommand", "recipient.email", JobExecution.recipient, True),
    ("TouchPointCommand", "recipient.phone", JobExecution.recipient, False),
    ("TouchPointCommand", "recipient.email", Suppression.contact, True),
    ("TouchPointOutcome", "reason", JobExecution.reason, True),
    ("TouchPointOutcome", "provider_message_id", JobExecution.provider_message_id, True),
    ("ContactSignal", "signal_id", ProviderEvent.event_key, True),
    ("ContactSignal", "contact", Suppression.contact, True),
    ("ContactSignal", "source", Suppression.source, True),
    ("ContactSignal", "detail", JobExecution.delivery_error, True),
]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref:
        return _resolve(schema, schema["$defs"][ref.rsplit("/", 1)[1]])
    return node


def _variants(schema: dict[str, Any], node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    node = _resolve(schema, node)
    if "anyOf" in node:
        for option in node["anyOf"]:
            yield from _variants(schema, option)
    else:
        yield node


def texts(
    schema: dict[str, Any], node: dict[str, Any], path: str = ""
) -> Iterator[tuple[str, Any]]:
    """(dotted path, maxLength or None) of every free text in `node`; list items as `path[]`,
    and each list itself as `path[*]` with its maxItems."""
    for variant in _variants(schema, node):
        kind = variant.get("type")
        if kind == "object" and "properties" in variant:
            for name, sub in variant["properties"].items():
                yield from texts(schema, sub, f"{path}.{name}" if path else name)
        elif kind == "array":
            yield f"{path}[*]", variant.get("maxItems")
            yield from texts(schema, variant.get("items", {}), f"{path}[]")
        elif kind == "string" and "enum" not in variant and "const" not in variant:
            if variant.get("format") in ("uuid", "date-time"):
                continue
            yield path, variant.get("maxLength")


def bounds_of(contract: str) -> dict[str, Any]:
    schema = CONTRACTS[contract].model_json_schema()
    return dict(texts(schema, schema))


@pytest.mark.parametrize("contract", sorted(CONTRACTS))
def test_every_text_of_every_contract_is_bounded(contract: str) -> None:
    found = bounds_of(contract)
    assert found, contract
    unbounded = sorted(path for path, bound in found.items() if bound is None)
    assert not unbounded, f"{contract}: no maximum length on {unbounded}"


@pytest.mark.parametrize(("contract", "path", "column", "exact"), STORED)
def test_stored_fields_have_their_columns_length(
    contract: str, path: str, column: InstrumentedAttribute[Any], exact: bool
) -> None:
    bound = bounds_of(contract)[path]
    kind = column.property.columns[0].type
    where = f"{contract}.{path} → {column.class_.__tablename__}.{column.key}"
    if isinstance(kind, String) and kind.length is not None:
        if exact:
            assert bound == kind.length, f"{where}: {bound} != varchar({kind.length})"
        else:
            assert bound <= kind.length, f"{where}: {bound} > varchar({kind.length})"
    else:  # TEXT: any bound fits; the contract's is the only one
        assert isinstance(kind, Text), f"{where}: {kind!r} is neither varchar nor text"


def test_every_text_column_the_projection_writes_has_a_contract_field() -> None:
    """A new varchar column in `leads` needs its pair above (the projection writes it)."""
    from services.sequencer.adapters.projection import COLUMNS

    mapped = {col.key for contract, _, col, _ in STORED if col.class_ is Lead}
    enums = {"state", "source"}  # written from enums the contracts already bound
    for name in COLUMNS:
        kind = Lead.__table__.columns[name].type
        if isinstance(kind, String) and name not in enums:
            assert name in mapped, f"leads.{name} is written by the projection but not mapped"
