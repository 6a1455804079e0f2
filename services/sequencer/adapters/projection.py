"""The `lead-projection` consumer: leads.lead-changes.v1 → the `leads` table (read model).

Idempotent and monotonic: a row is written only when the incoming snapshot's `version` is
newer than the row's AND its content differs from the row (everything but `version` and
`projected_at`; `updated_at` is content: the latest time of the lead's own events, which a
payment moves alone). So a redelivered, replayed or late change never overwrites a newer row,
and a replay that changes nothing logically leaves the table byte-for-byte as it was (no
`projected_at` bump). A lead of a tenant that is not in `tenants` is skipped
(the read model only holds known locations).

Poison records never stop the read model: a record that is not a valid LeadChanged goes to the
DLQ at once; a batch that PostgreSQL refuses for its data (`DataError`: too long, a NUL, out of
range; `IntegrityError`: a constraint) is applied again one record at a time, each under its
own savepoint, and the records refused there go to the DLQ with PostgreSQL's reason, the
others are written. Only a transient failure (connection lost, server down) retries the whole
batch, with backoff.

Runs in its own thread with a confluent-kafka consumer and a psycopg connection, so the Faust
event loop never waits on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
import psycopg
from confluent_kafka import Message, TopicPartition
from sqlalchemy.dialects import postgresql

from schemas.events import LeadChanged
from services.common.db.models import Lead
from services.common.errors import ContractError, InfrastructureError
from services.common.kafka.codec import decode
from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.dlq import DeadLetter, DeadLetters
from services.sequencer.adapters import metrics

log = logging.getLogger(__name__)

COLUMNS = (
    "lead_id",
    "tenant_id",
    "state",
    "source",
    "version",
    "shopmonkey_order_id",
    "order_number",
    "customer_id",
    "first_name",
    "last_name",
    "email",
    "phone",
    "vehicle",
    "services",
    "lost_reason",
    "touches_sent",
    "email_opted_out",
    "sms_opted_out",
    "sequence_stopped",
    "created_at",
    "updated_at",
    "last_touch_at",
    "declined_services",
    "declined_cents",
    "revived_services",
    "revived_cents",
)
#: What "the same lead" means for the read model (no version, no time it was projected).
CONTENT = tuple(c for c in COLUMNS if c not in ("lead_id", "version"))

_placeholders = ", ".join(f"%({c})s" for c in COLUMNS)
_set = ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS if c != "lead_id")
_old = ", ".join(f"leads.{c}" for c in CONTENT)
_new = ", ".join(f"EXCLUDED.{c}" for c in CONTENT)
UPSERT = f"""
INSERT INTO leads ({", ".join(COLUMNS)}, projected_at)
SELECT {_placeholders}, now()
WHERE EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s)
ON CONFLICT (lead_id) DO UPDATE SET {_set}, projected_at = now()
WHERE leads.version < EXCLUDED.version AND ({_old}) IS DISTINCT FROM ({_new})
"""


#: Each column's type in a batch's JSON rows: the `leads` model's own (a value too long for
#: its varchar is refused as a parameter's would be).
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_TYPES = {c: Lead.__table__.c[c].type.compile(dialect=_DIALECT) for c in COLUMNS}
#: A batch of changes in one statement: the rows as one JSON array (one statement's
#: overhead in PostgreSQL and in psycopg for the whole batch, not one per row).
UPSERT_BATCH = f"""
INSERT INTO leads ({", ".join(COLUMNS)}, projected_at)
SELECT {", ".join(f"r.{c}" for c in COLUMNS)}, now()
  FROM jsonb_to_recordset(%(rows)s::jsonb)
       AS r({", ".join(f"{c} {_TYPES[c]}" for c in COLUMNS)})
 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = r.tenant_id)
ON CONFLICT (lead_id) DO UPDATE SET {_set}, projected_at = now()
WHERE leads.version < EXCLUDED.version AND ({_old}) IS DISTINCT FROM ({_new})
"""


def row_of(change: LeadChanged) -> dict[str, Any]:
    lead = change.lead
    c = lead.customer
    return {
        "lead_id": lead.lead_id,
        "tenant_id": lead.tenant_id,
        "state": lead.state.value,
        "source": lead.source.value,
        "version": lead.version,
        "shopmonkey_order_id": lead.shopmonkey_order_id,
        "order_number": lead.order_number,
        "customer_id": c.customer_id,
        "first_name": c.first_name,
        "last_name": c.last_name,
        "email": c.email,
        "phone": c.phone,
        "vehicle": lead.vehicle,
        "services": json.dumps(lead.services),
        "lost_reason": lead.lost_reason,
        "touches_sent": lead.touches_sent,
        "email_opted_out": lead.email_opted_out,
        "sms_opted_out": lead.sms_opted_out,
        "sequence_stopped": lead.sequence_stopped,
        "created_at": lead.created_at,
        "updated_at": lead.updated_at,
        "last_touch_at": lead.last_touch_at,
        "declined_services": lead.declined_services,
        "declined_cents": lead.declined_cents,
        "revived_services": lead.revived_services,
        "revived_cents": lead.revived_cents,
    }


#: What PostgreSQL says about a record's data, not about itself: the same row fails again.
REFUSED_DATA = (psycopg.DataError, psycopg.IntegrityError)

#: The source of a change (its Kafka message), carried along to be dead-lettered.
M = TypeVar("M")


@dataclass
class Projected(Generic[M]):
    """How a batch went: rows written, and the changes PostgreSQL refused with its reason."""

    written: int = 0
    refused: list[tuple[M, str]] = field(default_factory=list)


def newest_per_lead(changes: Sequence[tuple[M, LeadChanged]]) -> list[tuple[M, LeadChanged]]:
    """One change per lead: the highest version in the batch (the others can never win)."""
    best: dict[uuid.UUID, tuple[M, LeadChanged]] = {}
    for source, change in changes:
        old = best.get(change.lead_id)
        if old is None or change.lead.version > old[1].lead.version:
            best[change.lead_id] = (source, change)
    return list(best.values())


def refusal(exc: psycopg.Error) -> str:
    """PostgreSQL's reason, without the values it quotes (its `detail` names the key)."""
    primary = exc.diag.message_primary if exc.diag is not None else None
    return f"{type(exc).__name__}: {primary or str(exc).splitlines()[0]}"[:500]


def project(
    conn: psycopg.Connection[Any], changes: Sequence[tuple[M, LeadChanged]]
) -> Projected[M]:
    """Apply a batch in one statement (one round trip whatever its size on an autocommit
    connection); if PostgreSQL refuses some record's data, again one record per savepoint,
    leaving out (and returning) the refused ones. A transient error (connection, server)
    propagates: the caller retries the batch."""
    newest = newest_per_lead(changes)
    done: Projected[M] = Projected()
    if not newest:
        return done
    rows = [(source, row_of(change)) for source, change in newest]
    try:
        with conn.cursor() as cur:
            if len(rows) == 1:
                statement, params = UPSERT, rows[0][1]
            else:  # `services` nested as JSON, not as the string a parameter carries
                batch = [
                    row | {"services": change.lead.services}
                    for (_, row), (_, change) in zip(rows, newest, strict=True)
                ]
                statement, params = UPSERT_BATCH, {"rows": orjson.dumps(batch).decode()}
            if conn.autocommit:  # one statement: atomic on its own
                cur.execute(statement, params)
            else:
                with conn.transaction():
                    cur.execute(statement, params)
            done.written = max(cur.rowcount, 0)
        return done
    except REFUSED_DATA:
        done = Projected()
    with conn.transaction(), conn.cursor() as cur:
        for source, row in rows:
            try:
                with conn.transaction():  # a savepoint: a refusal undoes this row only
                    cur.execute(UPSERT, row)
                    done.written += max(cur.rowcount, 0)
            except REFUSED_DATA as exc:
                done.refused.append((source, refusal(exc)))
    return done


def upsert(conn: psycopg.Connection[Any], changes: list[LeadChanged]) -> int:
    """Apply a batch; returns how many rows were written (refused rows left out)."""
    return project(conn, [(None, change) for change in changes]).written


class Projection:
    """The consume → upsert → store-offsets loop; `run(stop)` until `stop` is set."""

    def __init__(
        self,
        consumer: AtLeastOnceConsumer,
        dsn: str,
        dead_letters: DeadLetters,
        *,
        batch: int = 500,
    ) -> None:
        self.consumer = consumer
        self.dsn = dsn
        self.dead_letters = dead_letters
        self.batch = batch
        self._conn: psycopg.Connection[Any] | None = None

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
        return self._conn

    def process(self, messages: list[Message]) -> None:
        changes: list[tuple[Message, LeadChanged]] = []
        for msg in messages:
            try:
                changes.append((msg, decode(LeadChanged, msg.value())))
            except ContractError as exc:
                self._dead_letter(msg, f"poison: {exc}")
        started = time.perf_counter()
        done = project(self._connection(), changes)
        for msg, reason in done.refused:
            self._dead_letter(msg, f"poison: PostgreSQL refused the row: {reason}")
        metrics.PROJECTION_BATCH_SECONDS.observe(time.perf_counter() - started)
        metrics.PROJECTED.labels("written").inc(done.written)
        metrics.PROJECTED.labels("unchanged").inc(len(changes) - done.written - len(done.refused))

    def _dead_letter(self, msg: Message, reason: str) -> None:
        self.dead_letters.publish(DeadLetter.of(msg, reason))
        metrics.PROJECTED.labels("dead_lettered").inc()

    def run(self, stop: threading.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            messages = self.consumer.poll_batch(self.batch, timeout=0.5)
            if not messages:
                continue
            try:
                self.process(messages)
            except (psycopg.Error, InfrastructureError) as exc:  # an outage: wait, again
                log.warning("projection: %s; retrying the batch in %.1f s", exc, delay)
                self._close_db()
                self._rewind(messages)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.5
            for msg in messages:
                self.consumer.store(msg)

    def _rewind(self, messages: list[Message]) -> None:
        """Seek each partition back to the first record of the failed batch."""
        first: dict[tuple[str, int], int] = {}
        for msg in messages:
            tp = (str(msg.topic()), int(msg.partition() or 0))
            first[tp] = min(first.get(tp, int(msg.offset() or 0)), int(msg.offset() or 0))
        for (topic, partition), offset in first.items():
            self.consumer.raw.seek(TopicPartition(topic, partition, offset))

    def _close_db(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        self._close_db()
        self.consumer.close()
