"""Campaigns after the estimate: the campaign run of each ledger row (the frequency cap across
campaigns and the review request's once-per-customer rule read it), a tenant's campaign plans
(JSONB, validated by the sequencer like `nurture_plan`), its review URL, and the days it marks
closed (holidays: no send window opens on them, messages wait for the next open day).

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("job_executions", sa.Column("campaign", sa.String(160), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("campaign_plans", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("tenants", sa.Column("review_url", sa.String(500), nullable=True))
    op.create_table(
        "location_closed_days",
        sa.Column(
            "tenant_id",
            sa.UUID(),
            sa.ForeignKey("tenants.id", ondelete="CASCADE", name="fk_location_closed_days_tenant_id_tenants"),
            nullable=False,
        ),
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "day", name="pk_location_closed_days"),
    )


def downgrade() -> None:
    op.drop_table("location_closed_days")
    op.drop_column("tenants", "review_url")
    op.drop_column("tenants", "campaign_plans")
    op.drop_column("job_executions", "campaign")
