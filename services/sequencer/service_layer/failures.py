"""What the sequencer does when something fails, decided here once.

- A record that fails deterministically (`ContractError`: not a valid event, a key that is not
  its tenant, a `BadRecord`; a validation error) is dead-lettered with the reason after that
  one try; the batch goes on.
- A transient failure while one record is handled (an outage: `InfrastructureError`, a lost
  connection, a timeout) is retried, that record alone, with backoff, for as long as it lasts:
  an outage pauses the stream, it never drops a record.
- Any other error is logged with its traceback and the record tried again, up to
  `services.common.poison.UNKNOWN_TRIES` times in all, then dead-lettered ("unknown
  <type>: ..."); the batch goes on. (The policy is services.common.poison, shared by every
  consumer.)
- Timer and database work (looking up and reloading tenants, following `replay_runs`, a tick's
  evaluation of one lead) is logged when it fails; the batch goes on with what it has (cached
  or default tenant configurations) and the timer tries again at its next turn.
- Anything else (writing the state tables) propagates: the batch is not acknowledged, and its
  records are read again. Kafka refusing outputs is not a failure here: the outbox produces
  them again until they are accepted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from services.common.domain.dead_letter import DeadLetter
from services.common.domain.pacing import backoff_delay
from services.common.poison import Failure, reason_of
from services.sequencer.ports import SourceMessage

log = logging.getLogger(__name__)

#: The result label of a record that was dead-lettered.
DEAD_LETTERED = "dead_lettered"


def retry_delay(tries: int) -> float:
    """Seconds before trying a record again after its `tries`-th failure."""
    return backoff_delay(tries - 1, base=0.2, cap=10.0)


def record_failed(source: str, message: SourceMessage, exc: Exception, failure: Failure) -> None:
    """Log one failed try of a record: an outage as a warning, an unknown error with its
    traceback (a bug until shown otherwise), a poison record not at all (its dead letter is)."""
    where = f"{message.topic}[{message.partition}]@{message.offset}"
    if failure is Failure.TRANSIENT:
        log.warning("%s: %s failed (%s); retrying that record", source, where, exc)
    elif failure is Failure.UNKNOWN:
        log.error("%s: unexpected error on %s", source, where, exc_info=exc)


def dead_letter(
    source: str, message: SourceMessage, exc: Exception, failure: Failure = Failure.POISON
) -> DeadLetter:
    """The dead letter of a record whose handling raised `exc`."""
    reason = reason_of(exc, failure)
    return DeadLetter(
        message.topic,
        message.partition,
        message.offset,
        message.key if isinstance(message.key, bytes) else None,
        message.value if isinstance(message.value, bytes) else None,
        reason,
    )


def lead_not_evaluated(lead_id: uuid.UUID) -> None:
    """A tick could not evaluate one due lead (called while handling the error): logged, the
    tick goes on with the others."""
    log.exception("tick: could not evaluate lead %s", lead_id)


def retry_later(what: str) -> None:
    """Timer and database work that failed (called while handling the error): logged as
    `what` with its traceback, not raised; the timer tries again at its next turn."""
    log.exception(what)


@contextmanager
def retried_later(what: str) -> Iterator[None]:
    """`retry_later` around a block: a failure is logged and the caller goes on."""
    try:
        yield
    except Exception:
        retry_later(what)
