"""What the sequencer does when something fails, decided here once.

- A record that breaks the contract (`ContractError`: not a valid event, a key that is not
  its tenant, a `BadRecord`) is dead-lettered with the reason; the batch goes on.
- Any other error raised while one record is handled is logged with its traceback and the
  record dead-lettered ("unexpected <type>: ..."); the batch goes on.
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
from services.common.errors import ContractError
from services.sequencer.ports import SourceMessage

log = logging.getLogger(__name__)

#: The result label of a record that was dead-lettered.
DEAD_LETTERED = "dead_lettered"


def dead_letter(source: str, message: SourceMessage, exc: Exception) -> DeadLetter:
    """The dead letter of a record whose handling raised `exc`."""
    if isinstance(exc, ContractError):
        reason = str(exc)
    else:
        log.error("%s: unexpected error on a record", source, exc_info=exc)
        reason = f"unexpected {type(exc).__name__}: {exc}"
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
