"""Replay runs and backfill cursors.

`replay_runs`: one row per `leadctl replay --execute` (the sequencer reads it to know which
records are replayed: offsets below `end_offsets` on a source partition, for `tenants` or all).
`backfill_cursors`: how far a `leadctl backfill` has paged a tenant's Shopmonkey history;
advanced only after Kafka acked the page, so a killed backfill resumes where it stopped.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "replay_runs",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("app_group", sa.Text(), nullable=False),
        sa.Column("tenants", postgresql.ARRAY(postgresql.UUID(as_uuid=True)), nullable=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "end_offsets",
            postgresql.JSONB(),
            nullable=False,
            server_default=sa.text("'{}'::jsonb"),
        ),
        sa.Column("status", sa.String(20), nullable=False, server_default="pending"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "stats", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.CheckConstraint(
            "status in ('pending', 'running', 'done', 'aborted')",
            name=op.f("ck_replay_runs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_runs")),
    )
    op.create_index(op.f("ix_replay_runs_app_group_status"), "replay_runs", ["app_group", "status"])
    op.create_table(
        "backfill_cursors",
        sa.Column("tenant_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_skip", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("orders_produced", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("pages", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status", sa.String(20), nullable=False, server_default="running"),
        sa.Column(
            "started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('running', 'done')", name=op.f("ck_backfill_cursors_status")
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_backfill_cursors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "since", name=op.f("pk_backfill_cursors")),
    )


def downgrade() -> None:
    op.drop_table("backfill_cursors")
    op.drop_index(op.f("ix_replay_runs_app_group_status"), table_name="replay_runs")
    op.drop_table("replay_runs")
