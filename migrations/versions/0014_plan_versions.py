"""Plan versions (DESIGN §12: plans are per tenant and versioned; a replay uses the version in
force at each event's time): every version of a tenant's nurture plan and of each campaign's
plan, when it was set and by whom. A plan a tenant already had becomes its version 1, in force
since always (valid from the epoch); `tenants.nurture_plan` / `campaign_plans` keep the latest.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("nurture", "declined", "review", "appointment")
SINCE_ALWAYS = "1970-01-01T00:00:00Z"


def upgrade() -> None:
    op.create_table(
        "plan_versions",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("campaign", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("document", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "valid_from",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("set_by", sa.Text(), nullable=False),
        sa.CheckConstraint(f"campaign in {KINDS!r}", name=op.f("ck_plan_versions_campaign")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_plan_versions_version")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_plan_versions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "campaign", "version", name=op.f("pk_plan_versions")),
    )
    op.execute(
        f"""
        INSERT INTO plan_versions (tenant_id, campaign, version, document, valid_from, set_by)
        SELECT id, 'nurture', 1, nurture_plan, '{SINCE_ALWAYS}', 'migration 0014'
          FROM tenants WHERE nurture_plan IS NOT NULL AND jsonb_typeof(nurture_plan) = 'object'
        """
    )
    op.execute(
        f"""
        INSERT INTO plan_versions (tenant_id, campaign, version, document, valid_from, set_by)
        SELECT t.id, p.key, 1, p.value, '{SINCE_ALWAYS}', 'migration 0014'
          FROM tenants t, jsonb_each(t.campaign_plans) p
         WHERE t.campaign_plans IS NOT NULL AND jsonb_typeof(t.campaign_plans) = 'object'
           AND p.key IN ('declined', 'review', 'appointment')
           AND jsonb_typeof(p.value) = 'object'
        """
    )


def downgrade() -> None:
    op.drop_table("plan_versions")
