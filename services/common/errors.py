"""The exception tree shared by every service; each service extends it in its own `errors.py`.

LeadOrchestratorError
├── ConfigError            invalid or missing setting: the process stops at start, naming it
├── ContractError          a record that does not parse as its contract: goes to the DLQ
├── DataRejected           PostgreSQL refused a record's data for good (DataError,
│                          IntegrityError): never retried as is, the record goes to the DLQ
└── InfrastructureError    Kafka or PostgreSQL unreachable or refusing: retry, then fail loudly
    └── DeliveryError      Kafka did not acknowledge a produced record
        └── DeliveryTimeout    ... within the time the caller allowed
"""


class LeadOrchestratorError(Exception):
    """Base of every error this project raises on purpose."""


class ConfigError(LeadOrchestratorError):
    """A setting is invalid; the message names the environment variable."""


class ContractError(LeadOrchestratorError):
    """A record does not match its event contract."""


class DataRejected(LeadOrchestratorError):
    """A store refused this record's data (too long, NUL, out of range, a constraint): the
    same record would be refused again, whatever the retries."""


class InfrastructureError(LeadOrchestratorError):
    """Kafka or PostgreSQL is unreachable or refused an operation."""


class DeliveryError(InfrastructureError):
    """Kafka did not acknowledge a record (timeout, broker down, fatal producer error)."""


class DeliveryTimeout(DeliveryError):
    """No acknowledgement within the caller's deadline (the record may still arrive later)."""
