"""Opt-in and opt-out in the order they happened.

`contact_consent`: the last opt-out/opt-in recorded for a contact on a channel, per tenant
(NULL: every location, as an SMS STOP to the shared sender), with the time it happened and
the provider event that said it. A STOP or START older than the one recorded changes nothing;
the provider event is claimed (`provider_events`) in the same transaction as the suppressions
change, so a replayed webhook changes nothing either. No foreign key to `tenants`: a consent
is the customer's word and outlives a location's configuration.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_consent",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_key", sa.String(300), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("channel in ('email', 'sms')", name="ck_contact_consent_channel"),
        sa.PrimaryKeyConstraint("id", name="pk_contact_consent"),
        sa.UniqueConstraint(
            "tenant_id",
            "channel",
            "contact",
            name="uq_contact_consent_tenant_id_channel_contact",
            postgresql_nulls_not_distinct=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("contact_consent")
