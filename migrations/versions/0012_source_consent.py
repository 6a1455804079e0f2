"""Consent recorded at the source (Shopmonkey's customer record, a website form's checkboxes).

`source_consent`: per Shopmonkey company (customers are company-level), channel and contact
(lower-cased email or E.164 phone), the consent the source last said: `opted_in` (an email's
`subscribed`, a phone's `optIn`, a form's `consentSms`/`consentEmail`), the customer's
`marketingOptIn` and `preferredContactMethod`, the phone's `type` and `optInVerifiedDate`, a
form's consent-text version and time, and `changed_at` (the record's change time) so an older
record never overwrites a newer one. The outbound gate reads the row at send time.

`job_executions.consent`: the consent row the gate decided on, kept with the decision.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "source_consent",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("contact", sa.String(320), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=True),
        sa.Column("opted_in", sa.Boolean(), nullable=True),
        sa.Column("marketing_opt_in", sa.Boolean(), nullable=True),
        sa.Column("preferred", sa.String(10), nullable=True),
        sa.Column("line_type", sa.String(20), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("text_version", sa.String(50), nullable=True),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event_key", sa.String(300), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("channel in ('email', 'sms')", name="ck_source_consent_channel"),
        sa.CheckConstraint(
            "preferred is null or preferred in ('sms', 'email', 'all')",
            name="ck_source_consent_preferred",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_source_consent"),
        sa.UniqueConstraint(
            "company_id", "channel", "contact", name="uq_source_consent_company_id_channel_contact"
        ),
    )
    op.add_column(
        "job_executions",
        sa.Column("consent", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("job_executions", "consent")
    op.drop_table("source_consent")
