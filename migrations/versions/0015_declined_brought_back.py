"""Declined work brought back, in the leads read model: each lead's declined (or deferred)
services followed up, how many and their value, and those a later order of the customer
revived (the dashboard sums them per location). Existing rows read 0 until their lead changes.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("declined_services", sa.Integer()),
    ("declined_cents", sa.BigInteger()),
    ("revived_services", sa.Integer()),
    ("revived_cents", sa.BigInteger()),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("leads", sa.Column(name, kind, nullable=False, server_default="0"))


def downgrade() -> None:
    for name, _ in reversed(COLUMNS):
        op.drop_column("leads", name)
