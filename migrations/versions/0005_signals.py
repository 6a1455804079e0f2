"""Provider webhooks (SendGrid, Twilio) and the lead API.

- `provider_events`: the webhook deliveries already turned into signals (SendGrid `sg_event_id`,
  Twilio `MessageSid` + status), so provider retries and duplicates are harmless.
- `tenants.lead_api_key_sha256`: the tenant-scoped bearer token of the lead API (chat service).
- `job_executions.delivery_error`: the provider's error code/reason of the delivery status.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "provider_events",
        sa.Column("provider", sa.String(20), nullable=False),
        sa.Column("event_key", sa.String(300), nullable=False),
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True)),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("provider", "event_key", name="pk_provider_events"),
    )
    op.create_index("ix_provider_events_received_at", "provider_events", ["received_at"])
    op.add_column("tenants", sa.Column("lead_api_key_sha256", sa.String(64)))
    op.create_unique_constraint(
        "uq_tenants_lead_api_key_sha256", "tenants", ["lead_api_key_sha256"]
    )
    op.add_column("job_executions", sa.Column("delivery_error", sa.String(200)))


def downgrade() -> None:
    op.drop_column("job_executions", "delivery_error")
    op.drop_constraint("uq_tenants_lead_api_key_sha256", "tenants", type_="unique")
    op.drop_column("tenants", "lead_api_key_sha256")
    op.drop_index("ix_provider_events_received_at", table_name="provider_events")
    op.drop_table("provider_events")
