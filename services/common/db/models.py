"""PostgreSQL tables: tenants and their configuration, the lead read model, the send ledger.

Constraint names are deterministic (naming convention) so Alembic revisions stay reviewable.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.common.domain.operators import ROLES as OPERATOR_ROLES
from services.common.domain.read_model import JOB_STATUSES as JOB_STATUSES
from services.common.domain.read_model import LEAD_STATES as LEAD_STATES

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


SIGNATURE_SCHEMES = ("standard", "legacy_hmac")


class ShopmonkeyCompany(Base):
    """One Shopmonkey company: the API key and webhook secret Shopmonkey issues per company,
    shared by its locations (tenants). Both are Fernet tokens (encrypted under
    SECRETS_ENCRYPTION_KEYS, 0010). Read and written only through `db.companies`."""

    __tablename__ = "shopmonkey_companies"

    #: Shopmonkey's company id (`companyId` of its records).
    id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    shopmonkey_api_key: Mapped[str | None] = mapped_column(Text)
    #: Space-separated secrets while one is rotated (any of them verifies).
    webhook_secret: Mapped[str | None] = mapped_column(Text)
    signature_scheme: Mapped[str] = mapped_column(
        String(20), nullable=False, server_default="standard"
    )
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(f"signature_scheme in {SIGNATURE_SCHEMES!r}", name="signature_scheme"),
    )


class Tenant(Base):
    """One franchise location: a location of a Shopmonkey company, its timezone and address."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    shopmonkey_company_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("shopmonkey_companies.id"), nullable=False
    )
    shopmonkey_location_id: Mapped[str] = mapped_column(String(100), nullable=False)
    website_api_key_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    #: Lead API (chat service) bearer token of this location, stored hashed (0005_signals).
    lead_api_key_sha256: Mapped[str | None] = mapped_column(String(64), unique=True)
    timezone: Mapped[str] = mapped_column(
        String(64), nullable=False, server_default="America/New_York"
    )
    us_state: Mapped[str | None] = mapped_column(String(2))
    postal_address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(32))
    nurture_plan: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    #: Campaigns after the estimate (0013): per campaign {"enabled", "steps", …}; None: off.
    campaign_plans: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    #: Where the review request sends the customer (0013).
    review_url: Mapped[str | None] = mapped_column(String(500))
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (UniqueConstraint("shopmonkey_company_id", "shopmonkey_location_id"),)


class LocationClosedDay(Base):
    """A day the location is closed (a holiday, local date): no send window opens (0013)."""

    __tablename__ = "location_closed_days"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)


#: What `plan_versions.campaign` names: the nurture plan and each campaign (DESIGN §12).
PLAN_KINDS = ("nurture", "declined", "review", "appointment")


class PlanVersion(Base):
    """Every version of a tenant's nurture plan and campaign plans (0014), as an operator set
    it (`leadctl plans set`): the sequencer follows the version in force at each event's time;
    `tenants.nurture_plan` / `campaign_plans` hold the latest."""

    __tablename__ = "plan_versions"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        ForeignKey("tenants.id", ondelete="CASCADE"),
        primary_key=True,
    )
    campaign: Mapped[str] = mapped_column(String(20), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    document: Mapped[dict[str, object]] = mapped_column(JSONB, nullable=False)
    valid_from: Mapped[datetime] = _now()
    set_by: Mapped[str] = mapped_column(Text, nullable=False)

    __table_args__ = (
        CheckConstraint(f"campaign in {PLAN_KINDS!r}", name="campaign"),
        CheckConstraint("version >= 1", name="version"),
    )


class LocationHours(Base):
    """Opening hours per weekday (0 = Monday), in the tenant's timezone."""

    __tablename__ = "location_hours"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    weekday: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    opens_at: Mapped[time] = mapped_column(Time, nullable=False)
    closes_at: Mapped[time] = mapped_column(Time, nullable=False)

    __table_args__ = (
        UniqueConstraint("tenant_id", "weekday"),
        CheckConstraint("weekday between 0 and 6", name="weekday"),
        CheckConstraint("opens_at < closes_at", name="opens_before_closes"),
    )


class ServiceCatalog(Base):
    """Services a location offers, for templates and the chat service."""

    __tablename__ = "service_catalog"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str | None] = mapped_column(Text)
    price_cents: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("tenant_id", "code"),)


class Lead(Base):
    """Read model of a lead, projected from leads.lead-changes.v1 (newest `version` wins)."""

    __tablename__ = "leads"

    lead_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shopmonkey_order_id: Mapped[str | None] = mapped_column(String(100))
    order_number: Mapped[str | None] = mapped_column(String(50))
    customer_id: Mapped[str | None] = mapped_column(String(100))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(32))
    vehicle: Mapped[str | None] = mapped_column(String(200))
    services: Mapped[list[str]] = mapped_column(JSONB, nullable=False, server_default="[]")
    lost_reason: Mapped[str | None] = mapped_column(Text)
    touches_sent: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    email_opted_out: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    sms_opted_out: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    sequence_stopped: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_touch_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    projected_at: Mapped[datetime] = _now()
    #: Declined work (0015): the declined or deferred services of the lead's invoiced order
    #: (count, value in cents) and those a later order of the customer revived.
    declined_services: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    declined_cents: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    revived_services: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    revived_cents: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (
        CheckConstraint(f"state in {LEAD_STATES!r}", name="state"),
        Index(None, "tenant_id", "state"),
        Index(None, "tenant_id", "email"),
        Index(None, "tenant_id", "phone"),
    )


class JobExecution(Base):
    """The send ledger: one row per touch-point command, claimed before any provider call."""

    __tablename__ = "job_executions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    command_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False, unique=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    lead_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    step_index: Mapped[int] = mapped_column(Integer, nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    template: Mapped[str] = mapped_column(String(100), nullable=False)
    recipient: Mapped[str | None] = mapped_column(String(320))
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    reason: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(20))
    provider_message_id: Mapped[str | None] = mapped_column(String(100))
    delivery_status: Mapped[str | None] = mapped_column(String(30))
    delivery_updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivery_error: Mapped[str | None] = mapped_column(String(200))
    record_only: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("false"))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    deferred_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime] = _now()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: The source consent the gate decided on (0012), None when there was none to read.
    consent: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    #: The command's campaign run (0013), None for the estimate nurture plan.
    campaign: Mapped[str | None] = mapped_column(String(160))

    __table_args__ = (
        CheckConstraint(f"status in {JOB_STATUSES!r}", name="status"),
        CheckConstraint("channel in ('email', 'sms')", name="channel"),
        Index(None, "tenant_id", "lead_id"),
        Index(None, "tenant_id", "channel", "recipient", "decided_at"),
        Index(None, "status", "claimed_at"),
        Index(None, "provider_message_id"),
    )


class Suppression(Base):
    """Who must not be contacted on a channel (STOP, unsubscribe, bounce, spam report).

    `tenant_id` NULL means every location; uniqueness treats NULL as one value.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE")
    )
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    contact: Mapped[str] = mapped_column(String(320), nullable=False)
    reason: Mapped[str] = mapped_column(String(50), nullable=False)
    source: Mapped[str | None] = mapped_column(String(50))
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "contact", postgresql_nulls_not_distinct=True),
        CheckConstraint("channel in ('email', 'sms')", name="channel"),
        Index(None, "channel", "contact"),
    )


class ContactConsent(Base):
    """The last opt-out / opt-in recorded for a contact on a channel (0008), per tenant (NULL:
    every location). An older STOP or START than this one changes nothing."""

    __tablename__ = "contact_consent"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    contact: Mapped[str] = mapped_column(String(320), nullable=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    event_key: Mapped[str] = mapped_column(String(300), nullable=False)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        UniqueConstraint("tenant_id", "channel", "contact", postgresql_nulls_not_distinct=True),
        CheckConstraint("channel in ('email', 'sms')", name="channel"),
    )


class SourceConsent(Base):
    """Consent as the source recorded it (0012): Shopmonkey's customer record or a website
    form, per company, channel and contact; the newest record (`changed_at`) wins."""

    __tablename__ = "source_consent"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    company_id: Mapped[str] = mapped_column(String(100), nullable=False)
    channel: Mapped[str] = mapped_column(String(10), nullable=False)
    contact: Mapped[str] = mapped_column(String(320), nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    customer_id: Mapped[str | None] = mapped_column(String(100))
    opted_in: Mapped[bool | None] = mapped_column(Boolean)
    marketing_opt_in: Mapped[bool | None] = mapped_column(Boolean)
    preferred: Mapped[str | None] = mapped_column(String(10))
    line_type: Mapped[str | None] = mapped_column(String(20))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    text_version: Mapped[str | None] = mapped_column(String(50))
    consented_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    event_key: Mapped[str] = mapped_column(String(300), nullable=False)
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        UniqueConstraint("company_id", "channel", "contact"),
        CheckConstraint("channel in ('email', 'sms')", name="channel"),
        CheckConstraint(
            "preferred is null or preferred in ('sms', 'email', 'all')", name="preferred"
        ),
    )


class CustomerLocation(Base):
    """The locations (tenants) where a company's Shopmonkey customer has had orders (0016),
    kept by ingest: a new order of the customer is told to those others only."""

    __tablename__ = "customer_locations"

    company_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)), nullable=False)
    updated_at: Mapped[datetime] = _now()


class Operator(Base):
    """Someone who may sign in to the dashboard: `hq` sees every location, `location` only
    its `operator_tenants`. Credentials are argon2 hashes (a password for the sign-in page, or
    an API token for scripts); `session_epoch` grows on every reset or disable, which ends
    every session signed before (0010)."""

    __tablename__ = "operators"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    #: lower-cased
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    password_hash: Mapped[str | None] = mapped_column(Text)
    token_hash: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    session_epoch: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    last_sign_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint(f"role in {OPERATOR_ROLES!r}", name="role"),
        CheckConstraint(
            "password_hash IS NOT NULL OR token_hash IS NOT NULL", name="has_credential"
        ),
    )


class OperatorTenant(Base):
    """A location a `location` operator may see."""

    __tablename__ = "operator_tenants"

    operator_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("operators.id", ondelete="CASCADE"), primary_key=True
    )
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )


class ProviderEvent(Base):
    """A provider webhook event already turned into a signal (dedupe of retries, 0005)."""

    __tablename__ = "provider_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    tenant_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    received_at: Mapped[datetime] = _now()

    __table_args__ = (Index(None, "received_at"),)


class CompanyPollCursor(Base):
    """How far the poller has read a Shopmonkey company's records (`kind`: poll = orders,
    poll_customer = customers); one read per company serves all its locations."""

    __tablename__ = "company_poll_cursors"

    company_id: Mapped[str] = mapped_column(
        String(100), ForeignKey("shopmonkey_companies.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    cursor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_success_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = _now()


class ChatSession(Base):
    __tablename__ = "chat_sessions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
    )
    lead_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="open")
    started_at: Mapped[datetime] = _now()
    last_activity_at: Mapped[datetime] = _now()

    __table_args__ = (Index(None, "tenant_id", "lead_id"),)


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    session_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("chat_sessions.id", ondelete="CASCADE"), nullable=False
    )
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()

    __table_args__ = (
        CheckConstraint("role in ('customer', 'assistant', 'agent', 'system')", name="role"),
        Index(None, "session_id", "created_at"),
    )


REPLAY_STATUSES = ("pending", "running", "done", "aborted")


class ReplayRun(Base):
    """One `leadctl replay --execute`: records of the sequencer's source partitions at offsets
    below `end_offsets` ("<topic>:<partition>" → high watermark at request time) are replayed,
    for `tenants` (NULL = every tenant)."""

    __tablename__ = "replay_runs"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    app_group: Mapped[str] = mapped_column(Text, nullable=False)
    tenants: Mapped[list[uuid.UUID] | None] = mapped_column(ARRAY(UUID(as_uuid=True)))
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    end_offsets: Mapped[dict[str, int]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="pending")
    created_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    stats: Mapped[dict[str, object]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )

    __table_args__ = (
        CheckConstraint(f"status in {REPLAY_STATUSES!r}", name="status"),
        Index(None, "app_group", "status"),
    )


class BackfillCursor(Base):
    """How far `leadctl backfill` has paged one tenant's Shopmonkey history from `since`;
    advanced only after Kafka acked the page, so an interrupted backfill resumes there."""

    __tablename__ = "backfill_cursors"

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    cursor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cursor_skip: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    orders_produced: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    pages: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    status: Mapped[str] = mapped_column(String(20), nullable=False, server_default="running")
    started_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (CheckConstraint("status in ('running', 'done')", name="status"),)


metadata = Base.metadata
