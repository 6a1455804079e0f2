"""A website lead form (`POST /api/leads`) → OrderEvent, idempotent on the submission id.

Every field has a limit; a field over it, or holding a NUL character, is refused (400 naming
the field). A phone that is not a valid number is dropped (noted), unless it was the only way
to reach the lead (then 400)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any, Self

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.base import LeadIdKey, lead_id_for_form
from schemas.events import Customer, Operation, OrderEvent, OrderSource
from services.common.phones import normalize_phone
from services.ingest.domain.normalise import Adjusted
from services.ingest.errors import InvalidPayload

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WebsiteLeadForm(BaseModel):
    """What a location's website posts; `submission_id` is the client's idempotency key."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, frozen=True)

    submission_id: str = Field(
        min_length=1,
        max_length=200,
        validation_alias=AliasChoices("submission_id", "submissionId"),
    )
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    vehicle: str | None = Field(default=None, max_length=200)
    service_of_interest: str | None = Field(
        default=None,
        max_length=200,
        validation_alias=AliasChoices("service_of_interest", "serviceOfInterest", "service"),
    )

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("contains a NUL character")
        return value

    @model_validator(mode="after")
    def _contactable(self) -> Self:
        if self.email and not _EMAIL.match(self.email):
            raise ValueError("email is not an email address")
        if not self.email and not self.phone:
            raise ValueError("email or phone is required")
        if not self.email and normalize_phone(self.phone) is None:
            raise ValueError("phone is not a valid phone number (and there is no email)")
        return self

    @classmethod
    def parse(cls, doc: Any) -> WebsiteLeadForm:
        if not isinstance(doc, dict):
            raise InvalidPayload("body must be a JSON object")
        try:
            return cls.model_validate(doc)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{where}: {msg}" if where else msg)
            raise InvalidPayload("; ".join(problems)) from None


def website_event(
    tenant_id: uuid.UUID,
    form: WebsiteLeadForm,
    *,
    now: datetime,
    ids: LeadIdKey,
    adjusted: Adjusted | None = None,
) -> OrderEvent:
    """The form's event, its lead id derived under `ids`; a phone that is no valid number is
    left out and noted in `adjusted`."""
    phone = normalize_phone(form.phone) if form.phone else None
    if form.phone and phone is None and adjusted is not None:
        adjusted.append(("phone", "invalid_phone"))
    first = last = None
    if form.name:
        first, _, rest = form.name.partition(" ")
        last = rest.strip() or None
    return OrderEvent(
        event_id=f"website:{tenant_id}:{form.submission_id}",
        tenant_id=tenant_id,
        lead_id=lead_id_for_form(ids, tenant_id, form.submission_id),
        source=OrderSource.WEBSITE,
        entity="website_form",
        operation=Operation.INSERT,
        occurred_at=now,
        ingested_at=now,
        customer=Customer(
            first_name=first or None,
            last_name=last,
            email=form.email or None,
            phone=phone,
        ),
        service_of_interest=form.service_of_interest or None,
    )
