"""An OrderEvent as the normaliser assembles it, published without building the model.

The webhook path only serialises the event it builds, so it keeps the event's fields as plain
values (each of its contract's type, in the contract's field order, `order` and `customer` as
their own fields) and writes them straight to JSON: the same bytes as
`OrderEvent.model_dump_json` (property-tested against validation, tests/unit/ingest), without
the three models (event, order snapshot, customer) and the copies of their fields that
serialising them takes (their share of a webhook's CPU: bench/ingest/README.md).

`event()` gives the model for whoever needs more than the bytes (tests, consumers).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

import orjson

from schemas import bounds
from schemas.base import trusted
from schemas.events import (
    Appointment,
    Customer,
    OrderEvent,
    OrderSnapshot,
    OrderSource,
    ServiceLine,
)

#: A Customer's fields, in its order (`customer_id`, `first_name`, `last_name`, `email`,
#: `phone`), each a str or None.
Contact = dict[str, str | None]


#: Marks an order told to another location (`OrderEventDraft.elsewhere`):
#: `shopmonkey:elsewhere:<tenant>:<revived services' digest>:<order id>`.
ELSEWHERE_EVENT = ":elsewhere:"


class OrderEventDraft:
    """`fields`: every OrderEvent field in the contract's order, of its contract's type;
    `order` (or None) and `customer` hold every field of OrderSnapshot and Customer the
    same way, `order["service_lines"]` a list of ServiceLine fields, `appointment` (or None)
    Appointment's. Built by `normalise.order_draft`/`customer_draft`/`appointment_draft`,
    never from outside input."""

    __slots__ = ("fields",)

    def __init__(self, fields: dict[str, Any]) -> None:
        self.fields = fields

    @property
    def event_id(self) -> str:
        return str(self.fields["event_id"])

    @property
    def tenant_id(self) -> uuid.UUID:
        value: uuid.UUID = self.fields["tenant_id"]
        return value

    @property
    def lead_id(self) -> uuid.UUID | None:
        value: uuid.UUID | None = self.fields["lead_id"]
        return value

    @property
    def source(self) -> OrderSource:
        value: OrderSource = self.fields["source"]
        return value

    @property
    def occurred_at(self) -> datetime:
        value: datetime = self.fields["occurred_at"]
        return value

    @property
    def entity(self) -> str:
        return str(self.fields["entity"])

    @property
    def customer_email(self) -> str | None:
        value: str | None = self.fields["customer"]["email"]
        return value

    def elsewhere(self, tenant_id: uuid.UUID) -> OrderEventDraft:
        """This order told to another location of its company (`tenant_id`): a customer event
        (no lead of its own, it reaches that location's leads of the customer) carrying the
        order, so declined work there stops when the customer comes back here.

        Its id names the order and the services it revives, not the version: the order's
        later changes that revive nothing more are the same news, dropped there as duplicates.
        """
        order = self.fields["order"]
        revived = sorted({line["revived_from"] for line in order["service_lines"]} - {None})
        news = hashlib.blake2b("|".join(revived).encode(), digest_size=4).hexdigest()
        event_id = f"shopmonkey{ELSEWHERE_EVENT}{tenant_id.hex[:8]}:{news}:{order['order_id']}"
        return OrderEventDraft(
            self.fields
            | {
                "event_id": event_id[: bounds.EVENT_ID],
                "tenant_id": tenant_id,
                "lead_id": None,
                "entity": "customer",
            }
        )

    def plan_no_touchpoints(self) -> None:
        """History (`leadctl backfill` of an old order): a lead, but no touch points."""
        self.fields["plan_touchpoints"] = False

    def to_bytes(self) -> bytes:
        """The record's value: byte for byte `self.event().model_dump_json()`."""
        try:
            return orjson.dumps(self.fields, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:  # an integer beyond 64 bits: pydantic writes those
            return self.event().to_bytes()

    def event(self) -> OrderEvent:
        fields = self.fields
        order = fields["order"]
        appointment = fields["appointment"]
        if order is not None:
            lines = [trusted(ServiceLine, **line) for line in order["service_lines"]]
            order = trusted(OrderSnapshot, **(order | {"service_lines": lines}))
        return trusted(
            OrderEvent,
            **(
                fields
                | {
                    "order": order,
                    "customer": trusted(Customer, **fields["customer"]),
                    "appointment": (
                        None if appointment is None else trusted(Appointment, **appointment)
                    ),
                }
            ),
        )

    def __repr__(self) -> str:
        return f"OrderEventDraft({self.event_id})"
