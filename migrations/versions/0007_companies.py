"""Shopmonkey companies: the API key and webhook secret move from each location to its company.

Shopmonkey issues API keys per company, customers belong to the company, and a webhook without
`locationId` is global for the company; a tenant stays one location (company + location) and
now refers to its company's row.

- `shopmonkey_companies`: one row per distinct `tenants.shopmonkey_company_id`, holding what its
  tenants held. When a company's tenants disagree, the values are chosen deterministically, by
  tenant age (`created_at`, then `id`):
  - `name`: the oldest tenant's name (rename later; Shopmonkey's company name is not stored);
  - `shopmonkey_api_key`: the oldest tenant's non-empty key (any key of the company reads every
    location's records, so one suffices);
  - `signature_scheme`: the scheme of the oldest tenant that has a webhook secret;
  - `webhook_secret`: for the `standard` scheme, EVERY distinct secret of the tenants with that
    scheme, oldest tenant first, space-separated (the rotation form: any of them verifies), so
    each webhook Shopmonkey already delivers, signed with its location's secret, still
    verifies; for `legacy_hmac` (one secret only) the oldest tenant's. A secret of a tenant
    with the other scheme is dropped (its webhook then fails with 401: re-register it).
- `tenants.shopmonkey_company_id` becomes a foreign key; `tenants.shopmonkey_api_key`,
  `webhook_secret` and `signature_scheme` are dropped.
- `company_poll_cursors` replaces `poller_cursors` (one read per company serves its locations):
  a company's cursor of each kind is the OLDEST of its tenants' cursors (re-reading a little
  is harmless, events are idempotent; skipping is not), its `last_success_at` the oldest too;
  errors are not carried over (the next poll records its own).

Downgrade: every tenant gets its company's key, secret(s) and scheme back, and each tenant's
poll cursor is its company's.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STANDARD = "standard"


def merge_company(tenants: Sequence[Any]) -> dict[str, Any]:
    """A company's row from its tenants' rows (oldest first), as the docstring says."""
    first = tenants[0]
    key = next((t.shopmonkey_api_key for t in tenants if t.shopmonkey_api_key), None)
    signed = [t for t in tenants if t.webhook_secret and t.webhook_secret.strip()]
    scheme = signed[0].signature_scheme if signed else first.signature_scheme
    secret: str | None = None
    if signed and scheme == STANDARD:
        tokens: list[str] = []
        for t in signed:
            if t.signature_scheme == STANDARD:
                tokens += [s for s in t.webhook_secret.split() if s not in tokens]
        secret = " ".join(tokens)
    elif signed:
        secret = signed[0].webhook_secret
    return {
        "id": first.shopmonkey_company_id,
        "name": first.name,
        "shopmonkey_api_key": key,
        "webhook_secret": secret,
        "signature_scheme": scheme,
        "created_at": first.created_at,
    }


def _companies() -> sa.Table:
    return op.create_table(
        "shopmonkey_companies",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("shopmonkey_api_key", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=True),
        sa.Column("signature_scheme", sa.String(20), nullable=False, server_default=STANDARD),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "signature_scheme in ('standard', 'legacy_hmac')",
            name=op.f("ck_shopmonkey_companies_signature_scheme"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopmonkey_companies")),
    )


def upgrade() -> None:
    companies = _companies()
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, name, shopmonkey_company_id, shopmonkey_api_key, webhook_secret,"
            " signature_scheme, created_at FROM tenants"
            " ORDER BY shopmonkey_company_id, created_at, id"
        )
    ).all()
    by_company: dict[str, list[Any]] = {}
    for row in rows:
        by_company.setdefault(row.shopmonkey_company_id, []).append(row)
    if by_company:
        op.bulk_insert(companies, [merge_company(ts) for ts in by_company.values()])
    op.create_foreign_key(
        op.f("fk_tenants_shopmonkey_company_id_shopmonkey_companies"),
        "tenants",
        "shopmonkey_companies",
        ["shopmonkey_company_id"],
        ["id"],
    )
    op.drop_constraint(op.f("ck_tenants_signature_scheme"), "tenants", type_="check")
    op.drop_column("tenants", "shopmonkey_api_key")
    op.drop_column("tenants", "webhook_secret")
    op.drop_column("tenants", "signature_scheme")

    op.create_table(
        "company_poll_cursors",
        sa.Column("company_id", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["shopmonkey_companies.id"],
            name=op.f("fk_company_poll_cursors_company_id_shopmonkey_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("company_id", "kind", name=op.f("pk_company_poll_cursors")),
    )
    op.execute(
        "INSERT INTO company_poll_cursors (company_id, kind, cursor_at, last_success_at)"
        " SELECT t.shopmonkey_company_id, c.kind, min(c.cursor_at), min(c.last_success_at)"
        " FROM poller_cursors c JOIN tenants t ON t.id = c.tenant_id"
        " GROUP BY t.shopmonkey_company_id, c.kind"
    )
    op.drop_table("poller_cursors")


def downgrade() -> None:
    op.create_table(
        "poller_cursors",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=20), server_default="poll", nullable=False),
        sa.Column("cursor_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cursor_skip", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_poller_cursors_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "kind", name=op.f("pk_poller_cursors")),
    )
    op.execute(
        "INSERT INTO poller_cursors (tenant_id, kind, cursor_at, last_success_at, last_error,"
        " last_error_at)"
        " SELECT t.id, c.kind, c.cursor_at, c.last_success_at, c.last_error, c.last_error_at"
        " FROM company_poll_cursors c JOIN tenants t ON t.shopmonkey_company_id = c.company_id"
    )
    op.drop_table("company_poll_cursors")

    op.add_column("tenants", sa.Column("shopmonkey_api_key", sa.Text(), nullable=True))
    op.add_column("tenants", sa.Column("webhook_secret", sa.Text(), nullable=True))
    op.add_column(
        "tenants",
        sa.Column("signature_scheme", sa.String(20), server_default=STANDARD, nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_tenants_signature_scheme"),
        "tenants",
        "signature_scheme in ('standard', 'legacy_hmac')",
    )
    op.execute(
        "UPDATE tenants t SET shopmonkey_api_key = c.shopmonkey_api_key,"
        " webhook_secret = c.webhook_secret, signature_scheme = c.signature_scheme"
        " FROM shopmonkey_companies c WHERE c.id = t.shopmonkey_company_id"
    )
    op.drop_constraint(
        op.f("fk_tenants_shopmonkey_company_id_shopmonkey_companies"), "tenants", type_="foreignkey"
    )
    op.drop_table("shopmonkey_companies")
