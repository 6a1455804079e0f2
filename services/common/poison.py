"""Poison records vs outages, decided in one place for every consumer (projection, sequencer,
outbound): a record that fails deterministically goes to its DLQ with the reason and the stream
goes on; a transient failure is retried with backoff, never dead-lettered.

- transient: Kafka or PostgreSQL unreachable (`InfrastructureError`), a lost connection, a
  timeout: the same record will succeed once the outage is over;
- poison: the record itself cannot be processed (`ContractError`, `DataRejected`, a pydantic
  `ValidationError`, and whatever a consumer adds, e.g. a template that cannot render): one
  try is enough;
- unknown: anything else (a bug or a failure nobody classified yet): tried `UNKNOWN_TRIES`
  times with backoff, then treated as poison, so no record can stop a stream for good.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import ValidationError

from services.common.errors import ContractError, DataRejected, InfrastructureError

#: Tries of a record that fails in a way nobody classified, before it is dead-lettered.
UNKNOWN_TRIES = 3
TRANSIENT: tuple[type[BaseException], ...] = (InfrastructureError, ConnectionError, TimeoutError)
POISON: tuple[type[BaseException], ...] = (ContractError, DataRejected, ValidationError)


class Failure(StrEnum):
    TRANSIENT = "transient"
    POISON = "poison"
    UNKNOWN = "unknown"


def classify(exc: BaseException, poison: tuple[type[BaseException], ...] = ()) -> Failure:
    """What `exc`, raised while one record was processed, says about that record. `poison`:
    the consumer's own deterministic failures."""
    if isinstance(exc, POISON + poison):
        return Failure.POISON
    if isinstance(exc, TRANSIENT):
        return Failure.TRANSIENT
    return Failure.UNKNOWN


def gives_up(failure: Failure, tries: int) -> bool:
    """Whether a record that failed `tries` times so far, the last time with `failure`, goes
    to the DLQ now (a transient failure never does)."""
    if failure is Failure.POISON:
        return True
    if failure is Failure.UNKNOWN:
        return tries >= UNKNOWN_TRIES
    return False


def reason_of(exc: BaseException, failure: Failure) -> str:
    """The DLQ reason (`dlq.reason` header, logged): what failed and where, never the values
    (a validation error's own text quotes its input: a customer's address, say)."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        text = f"{where}: {first['msg']} ({exc.error_count()} error(s))"
    else:
        text = str(exc)
    return f"{failure.value}: {type(exc).__name__}: {text}"[:2000]
