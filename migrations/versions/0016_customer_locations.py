"""The locations where each Shopmonkey customer has orders (`customer_locations`), kept by
ingest, so a new order of a known customer is told only to the company's locations that have
leads of that customer (the sequencer there stops declined work), instead of to every location
of the company: one record a location was 4 extra records a webhook at a company of five, and
199 at a chain of 200.

One row per company and customer: the tenants (locations) it has had orders at. Seeded from
the lead read model (the leads that carry a Shopmonkey customer id). Orders the ingest of before
takes after this, and those the projection had not written yet, are merged by
`leadctl companies customer-locations`, run once the new ingest is deployed and the sequencer
has caught up.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customer_locations",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("customer_id", sa.String(100), nullable=False),
        sa.Column("tenant_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("company_id", "customer_id", name="pk_customer_locations"),
    )
    op.execute(
        "INSERT INTO customer_locations (company_id, customer_id, tenant_ids)"
        " SELECT t.shopmonkey_company_id, l.customer_id, array_agg(DISTINCT l.tenant_id)"
        " FROM leads l JOIN tenants t ON t.id = l.tenant_id"
        " WHERE l.customer_id IS NOT NULL"
        " GROUP BY t.shopmonkey_company_id, l.customer_id"
    )


def downgrade() -> None:
    op.drop_table("customer_locations")
