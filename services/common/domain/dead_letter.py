"""A dead letter: a record that could not be processed, and why (DESIGN §2: the raw record,
unchanged, goes to `<topic>.dlq` with the reason in headers; services.common.kafka.dlq
publishes it)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from schemas.base import utcnow

log = logging.getLogger("services.common.kafka.dlq")

Headers = list[tuple[str, str | bytes | None]]


class Record(Protocol):
    """What a consumed record offers (a confluent-kafka `Message`)."""

    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be processed, and why."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str

    @classmethod
    def of(cls, msg: Record, reason: str) -> DeadLetter:
        return cls(
            str(msg.topic()),
            int(msg.partition() or 0),
            int(msg.offset() or 0),
            msg.key(),
            msg.value(),
            reason,
        )

    def warn(self) -> None:
        """The log line every dead letter gets (the reason, never the record's content)."""
        log.warning(
            "dead-lettering %s[%d]@%d: %s", self.topic, self.partition, self.offset, self.reason
        )

    def headers(self, service: str) -> Headers:
        return [
            ("dlq.reason", self.reason[:2000].encode()),
            ("dlq.source.topic", self.topic.encode()),
            ("dlq.source.partition", str(self.partition).encode()),
            ("dlq.source.offset", str(self.offset).encode()),
            ("dlq.service", service.encode()),
            ("dlq.failed_at", utcnow().isoformat().encode()),
        ]
