"""Tenant directory notifications: PostgreSQL says when a company or location changed.

Ingest holds every active company, location and caller key hash in memory and answers every
caller from it; it LISTENs on `tenants_changed`, which these statement triggers NOTIFY after
any insert, update, delete or truncate of `shopmonkey_companies` or `tenants` (the payload is
the table's name; the listener reloads the whole directory, a few hundred rows).

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("shopmonkey_companies", "tenants")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_tenants_changed() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('tenants_changed', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE"
            f" ON {table} FOR EACH STATEMENT EXECUTE FUNCTION notify_tenants_changed()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER {table}_changed ON {table}")
    op.execute("DROP FUNCTION notify_tenants_changed()")
