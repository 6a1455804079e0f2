"""The vocabularies of the read model's tables, pure so domain code can use them without
SQLAlchemy: a lead's lifecycle states (`leads.state`) and a touch point's statuses in the send
ledger (`job_executions.status`); the tables' CHECK constraints are built from them."""

LEAD_STATES = ("new", "contacted", "engaged", "qualified", "appointment_set", "completed", "lost")
JOB_STATUSES = ("claimed", "sent", "skipped", "deferred", "failed", "unknown", "recorded")
