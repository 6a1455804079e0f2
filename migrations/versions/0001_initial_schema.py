"""Initial schema: tenants and their configuration, the lead read model, the send ledger,
suppressions, poller cursors, chat sessions and messages (reviewed autogenerate output).

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 17:32:53.662150
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('job_executions',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('command_id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('lead_id', sa.UUID(), nullable=False),
    sa.Column('step_index', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('template', sa.String(length=100), nullable=False),
    sa.Column('recipient', sa.String(length=320), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=True),
    sa.Column('provider_message_id', sa.String(length=100), nullable=True),
    sa.Column('delivery_status', sa.String(length=30), nullable=True),
    sa.Column('delivery_updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('record_only', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deferred_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claimed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("channel in ('email', 'sms')", name=op.f('ck_job_executions_channel')),
    sa.CheckConstraint("status in ('claimed', 'sent', 'skipped', 'deferred', 'failed', 'unknown', 'recorded')", name=op.f('ck_job_executions_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job_executions')),
    sa.UniqueConstraint('command_id', name=op.f('uq_job_executions_command_id'))
    )
    op.create_index(op.f('ix_job_executions_provider_message_id'), 'job_executions', ['provider_message_id'], unique=False)
    op.create_index(op.f('ix_job_executions_status_claimed_at'), 'job_executions', ['status', 'claimed_at'], unique=False)
    op.create_index(op.f('ix_job_executions_tenant_id_channel_recipient_decided_at'), 'job_executions', ['tenant_id', 'channel', 'recipient', 'decided_at'], unique=False)
    op.create_index(op.f('ix_job_executions_tenant_id_lead_id'), 'job_executions', ['tenant_id', 'lead_id'], unique=False)
    op.create_table('tenants',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('shopmonkey_company_id', sa.String(length=100), nullable=False),
    sa.Column('shopmonkey_location_id', sa.String(length=100), nullable=False),
    sa.Column('shopmonkey_api_key', sa.Text(), nullable=True),
    sa.Column('webhook_secret', sa.Text(), nullable=True),
    sa.Column('signature_scheme', sa.String(length=20), server_default='standard', nullable=False),
    sa.Column('website_api_key_sha256', sa.String(length=64), nullable=True),
    sa.Column('timezone', sa.String(length=64), server_default='America/New_York', nullable=False),
    sa.Column('us_state', sa.String(length=2), nullable=True),
    sa.Column('postal_address', sa.Text(), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('nurture_plan', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("signature_scheme in ('standard', 'legacy_hmac')", name=op.f('ck_tenants_signature_scheme')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tenants')),
    sa.UniqueConstraint('shopmonkey_company_id', 'shopmonkey_location_id', name=op.f('uq_tenants_shopmonkey_company_id_shopmonkey_location_id')),
    sa.UniqueConstraint('website_api_key_sha256', name=op.f('uq_tenants_website_api_key_sha256'))
    )
    op.create_table('chat_sessions',
    sa.Column('id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('lead_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.String(length=20), server_default='open', nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_activity_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_chat_sessions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_sessions'))
    )
    op.create_index(op.f('ix_chat_sessions_tenant_id_lead_id'), 'chat_sessions', ['tenant_id', 'lead_id'], unique=False)
    op.create_table('leads',
    sa.Column('lead_id', sa.UUID(), nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('state', sa.String(length=20), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('version', sa.BigInteger(), nullable=False),
    sa.Column('shopmonkey_order_id', sa.String(length=100), nullable=True),
    sa.Column('order_number', sa.String(length=50), nullable=True),
    sa.Column('customer_id', sa.String(length=100), nullable=True),
    sa.Column('first_name', sa.String(length=200), nullable=True),
    sa.Column('last_name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('vehicle', sa.String(length=200), nullable=True),
    sa.Column('services', postgresql.JSONB(astext_type=sa.Text()), server_default='[]', nullable=False),
    sa.Column('lost_reason', sa.Text(), nullable=True),
    sa.Column('touches_sent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('email_opted_out', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('sms_opted_out', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('sequence_stopped', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_touch_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('projected_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("state in ('new', 'contacted', 'engaged', 'qualified', 'appointment_set', 'completed', 'lost')", name=op.f('ck_leads_state')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_leads_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('lead_id', name=op.f('pk_leads'))
    )
    op.create_index(op.f('ix_leads_tenant_id_email'), 'leads', ['tenant_id', 'email'], unique=False)
    op.create_index(op.f('ix_leads_tenant_id_phone'), 'leads', ['tenant_id', 'phone'], unique=False)
    op.create_index(op.f('ix_leads_tenant_id_state'), 'leads', ['tenant_id', 'state'], unique=False)
    op.create_table('location_hours',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('weekday', sa.SmallInteger(), nullable=False),
    sa.Column('opens_at', sa.Time(), nullable=False),
    sa.Column('closes_at', sa.Time(), nullable=False),
    sa.CheckConstraint('opens_at < closes_at', name=op.f('ck_location_hours_opens_before_closes')),
    sa.CheckConstraint('weekday between 0 and 6', name=op.f('ck_location_hours_weekday')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_location_hours_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_location_hours')),
    sa.UniqueConstraint('tenant_id', 'weekday', name=op.f('uq_location_hours_tenant_id_weekday'))
    )
    op.create_table('poller_cursors',
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('kind', sa.String(length=20), server_default='poll', nullable=False),
    sa.Column('cursor_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cursor_skip', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_success_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_poller_cursors_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', 'kind', name=op.f('pk_poller_cursors'))
    )
    op.create_table('service_catalog',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('price_cents', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_service_catalog_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_catalog')),
    sa.UniqueConstraint('tenant_id', 'code', name=op.f('uq_service_catalog_tenant_id_code'))
    )
    op.create_table('suppressions',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('tenant_id', sa.UUID(), nullable=True),
    sa.Column('channel', sa.String(length=10), nullable=False),
    sa.Column('contact', sa.String(length=320), nullable=False),
    sa.Column('reason', sa.String(length=50), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("channel in ('email', 'sms')", name=op.f('ck_suppressions_channel')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_suppressions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_suppressions')),
    sa.UniqueConstraint('tenant_id', 'channel', 'contact', name=op.f('uq_suppressions_tenant_id_channel_contact'), postgresql_nulls_not_distinct=True)
    )
    op.create_index(op.f('ix_suppressions_channel_contact'), 'suppressions', ['channel', 'contact'], unique=False)
    op.create_table('chat_messages',
    sa.Column('id', sa.BigInteger(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.UUID(), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role in ('customer', 'assistant', 'agent', 'system')", name=op.f('ck_chat_messages_role')),
    sa.ForeignKeyConstraint(['session_id'], ['chat_sessions.id'], name=op.f('fk_chat_messages_session_id_chat_sessions'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_messages'))
    )
    op.create_index(op.f('ix_chat_messages_session_id_created_at'), 'chat_messages', ['session_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_chat_messages_session_id_created_at'), table_name='chat_messages')
    op.drop_table('chat_messages')
    op.drop_index(op.f('ix_suppressions_channel_contact'), table_name='suppressions')
    op.drop_table('suppressions')
    op.drop_table('service_catalog')
    op.drop_table('poller_cursors')
    op.drop_table('location_hours')
    op.drop_index(op.f('ix_leads_tenant_id_state'), table_name='leads')
    op.drop_index(op.f('ix_leads_tenant_id_phone'), table_name='leads')
    op.drop_index(op.f('ix_leads_tenant_id_email'), table_name='leads')
    op.drop_table('leads')
    op.drop_index(op.f('ix_chat_sessions_tenant_id_lead_id'), table_name='chat_sessions')
    op.drop_table('chat_sessions')
    op.drop_table('tenants')
    op.drop_index(op.f('ix_job_executions_tenant_id_lead_id'), table_name='job_executions')
    op.drop_index(op.f('ix_job_executions_tenant_id_channel_recipient_decided_at'), table_name='job_executions')
    op.drop_index(op.f('ix_job_executions_status_claimed_at'), table_name='job_executions')
    op.drop_index(op.f('ix_job_executions_provider_message_id'), table_name='job_executions')
    op.drop_table('job_executions')
