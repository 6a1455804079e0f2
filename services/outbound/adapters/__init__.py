"""Outbound adapters: PostgreSQL ledger and tenants, SendGrid and Twilio, templates, Kafka."""
