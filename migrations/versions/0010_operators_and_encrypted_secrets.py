"""Operators who sign in, and the companies' secrets encrypted at rest.

- `operators` (email, role `hq` or `location`, argon2 hashes of a password and/or an API token,
  `session_epoch` that ends every earlier session when it grows) and `operator_tenants` (the
  locations a `location` operator may see).
- `shopmonkey_companies.shopmonkey_api_key` and `webhook_secret` become Fernet tokens under
  SECRETS_ENCRYPTION_KEYS (its first key; the variable is read from the environment, then
  `.env` / `.env.local`; a caller running Alembic in-process may pass it as the config
  attribute `secrets_encryption_keys`). With rows to encrypt and no key the upgrade fails, naming the
  variable. A value that already decrypts with the keys is left as it is.

Downgrade: the secrets are decrypted back to plain text (the key is needed again when there
are rows) and the operator tables dropped.

Revision ID: 0010
Revises: 0008
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic_settings import BaseSettings, SettingsConfigDict

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VARIABLE = "SECRETS_ENCRYPTION_KEYS"
COLUMNS = ("shopmonkey_api_key", "webhook_secret")


class _Keys(BaseSettings):
    model_config = SettingsConfigDict(env_file=(".env", ".env.local"), extra="ignore")

    secrets_encryption_keys: str = ""


def _fernet() -> MultiFernet:
    raw = context.config.attributes.get("secrets_encryption_keys")
    raw = raw or _Keys().secrets_encryption_keys
    keys = [k.strip() for k in raw.split(",") if k.strip()]
    if not keys:
        raise RuntimeError(
            f"{VARIABLE} is not set: it is needed to encrypt (or decrypt) the stored Shopmonkey "
            "API keys and webhook secrets (`leadctl secrets new-key` makes a key)"
        )
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError:
        raise RuntimeError(f"{VARIABLE}: a key is not a Fernet key") from None


def _decrypts(fernet: MultiFernet, value: str) -> bool:
    try:
        fernet.decrypt(value.encode())
    except InvalidToken:
        return False
    return True


def _rewrite(change: Callable[[MultiFernet, str], str | None]) -> None:
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, shopmonkey_api_key, webhook_secret FROM shopmonkey_companies"
            " WHERE shopmonkey_api_key IS NOT NULL OR webhook_secret IS NOT NULL"
        )
    ).all()
    if not rows:
        return
    fernet = _fernet()
    for company_id, *values in rows:
        new = {}
        for column, value in zip(COLUMNS, values, strict=True):
            changed = change(fernet, value) if value else None
            if changed is not None:
                new[column] = changed
        if new:
            sets = ", ".join(f"{c} = :{c}" for c in new)
            conn.execute(
                sa.text(f"UPDATE shopmonkey_companies SET {sets} WHERE id = :id"),
                {**new, "id": company_id},
            )


def _encrypt(fernet: MultiFernet, value: str) -> str | None:
    return None if _decrypts(fernet, value) else fernet.encrypt(value.encode()).decode()


def _decrypt(fernet: MultiFernet, value: str) -> str | None:
    try:
        return fernet.decrypt(value.encode()).decode()
    except InvalidToken:
        raise RuntimeError(
            f"a stored secret does not decrypt with {VARIABLE}: set the key it was encrypted with"
        ) from None


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("token_hash", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_sign_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint("role in ('hq', 'location')", name=op.f("ck_operators_role")),
        sa.CheckConstraint(
            "password_hash IS NOT NULL OR token_hash IS NOT NULL",
            name=op.f("ck_operators_has_credential"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
        sa.UniqueConstraint("email", name=op.f("uq_operators_email")),
    )
    op.create_table(
        "operator_tenants",
        sa.Column("operator_id", sa.UUID(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operator_id"],
            ["operators.id"],
            name=op.f("fk_operator_tenants_operator_id_operators"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_operator_tenants_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("operator_id", "tenant_id", name=op.f("pk_operator_tenants")),
    )
    _rewrite(_encrypt)


def downgrade() -> None:
    _rewrite(_decrypt)
    op.drop_table("operator_tenants")
    op.drop_table("operators")
