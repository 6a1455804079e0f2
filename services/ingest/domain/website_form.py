"""A website lead form (`POST /api/leads`) → OrderEvent, idempotent on the submission id.

Consent is explicit: `consentSms` / `consentEmail` (true or false; absent: not asked, so no
SMS consent), and whenever either is given, the consent text's version (`consentTextVersion`)
and the moment the visitor agreed (`consentedAt`, ISO-8601 with its offset, not in the future)
are required; `form_consent` turns them into consent records, kept as evidence.

Every field has a limit; a field over it, or holding a NUL character, is refused (400 naming
the field). A phone that is not a valid number is dropped (noted), unless it was the only way
to reach the lead (then 400)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any, Self

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.base import Channel, LeadIdKey, lead_id_for_form, utcnow
from schemas.events import Customer, Operation, OrderEvent, OrderSource
from services.common.domain.consent import ConsentRecord
from services.common.phones import normalize_phone
from services.common.whitelist import normalize_email
from services.ingest.domain.normalise import Adjusted
from services.ingest.errors import InvalidPayload

#: How far ahead of our clock a form's `consentedAt` may be (the visitor's clock).
CONSENT_SKEW = timedelta(minutes=5)
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

    consent_sms: bool | None = Field(
        default=None, validation_alias=AliasChoices("consent_sms", "consentSms"), strict=True
    )
    consent_email: bool | None = Field(
        default=None, validation_alias=AliasChoices("consent_email", "consentEmail"), strict=True
    )
    consent_text_version: str | None = Field(
        default=None,
        min_length=1,
        max_length=50,
        validation_alias=AliasChoices("consent_text_version", "consentTextVersion"),
    )
    consented_at: AwareDatetime | None = Field(
        default=None, validation_alias=AliasChoices("consented_at", "consentedAt")
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
        if self.consent_sms is not None or self.consent_email is not None:
            if self.consent_text_version is None or self.consented_at is None:
                raise ValueError("consentTextVersion and consentedAt are required with consent")
            if self.consented_at > utcnow() + CONSENT_SKEW:
                raise ValueError("consentedAt is in the future")
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


def form_consent(form: WebsiteLeadForm, *, event_key: str, now: datetime) -> list[ConsentRecord]:
    """The form's explicit answers as consent records (source `website`, as of `now`, the
    time we received them: a visitor's clock never outranks Shopmonkey's later change), the
    consent text's version and the visitor's time kept as evidence."""

    def record(channel: Channel, contact: str, answer: bool) -> ConsentRecord:
        return ConsentRecord(
            channel,
            contact,
            "website",
            now,
            event_key[:300],
            opted_in=answer,
            text_version=form.consent_text_version,
            consented_at=form.consented_at,
        )

    records = []
    phone = normalize_phone(form.phone) if form.phone else None
    if form.consent_sms is not None and phone is not None:
        records.append(record(Channel.SMS, phone, form.consent_sms))
    email = normalize_email(form.email)
    if form.consent_email is not None and email is not None:
        records.append(record(Channel.EMAIL, email, form.consent_email))
    return records
