"""Compact bytes for the lead table: a positional JSON array (~300–500 bytes a lead), times
as integer microseconds since the epoch. Far smaller and faster than a pydantic model, which
matters with a million leads in RocksDB and a changelog record per change.

Layout version 1 (`FORMAT`); a record of another version raises `ValueError`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from schemas.events import OrderSource
from services.sequencer.domain.campaigns import AppointmentFacts, CampaignFacts, DeclinedService
from services.sequencer.domain.lead import Customer, Lead, Stage, StepRecord, StepStatus

FORMAT = 1
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# compact UTF-8 JSON: byte for byte what `json.dumps(separators=(",", ":"),
# ensure_ascii=False)` wrote before (leads in RocksDB and changelogs stay readable), faster
_dumps = orjson.dumps
_loads = orjson.loads


def us(at: datetime | None) -> int | None:
    return None if at is None else (at - EPOCH) // _US


def at(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _at(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


def _steps(steps: dict[int, StepRecord]) -> list[list[Any]]:
    return [
        [i, int(r.status), r.reason, us(r.due), us(r.emitted_at), r.emits, us(r.until),
         us(r.decided_at)]
        for i, r in sorted(steps.items())
    ]  # fmt: skip


def _decode_steps(rows: list[list[Any]]) -> dict[int, StepRecord]:
    return {
        s[0]: StepRecord(StepStatus(s[1]), s[2], at(s[3]), at(s[4]), s[5], at(s[6]), at(s[7]))
        for s in rows
    }


def _encode_facts(f: CampaignFacts) -> list[Any]:
    return [
        us(f.paid_at),
        us(f.declined_at),
        {sid: [d.name, d.total_cents] for sid, d in sorted(f.declined.items())},
        sorted(f.revived),
        us(f.returned_at),
        us(f.engaged_at),
        {
            aid: [list(a.key), us(a.start_at), a.cancelled, a.shopmonkey_reminder]
            for aid, a in sorted(f.appointments.items())
        },
    ]


def _decode_facts(row: list[Any]) -> CampaignFacts:
    paid, declined_at, declined, revived, returned, engaged, appointments = row
    return CampaignFacts(
        paid_at=at(paid),
        declined_at=at(declined_at),
        declined={sid: DeclinedService(d[0], d[1]) for sid, d in declined.items()},
        revived=set(revived),
        returned_at=at(returned),
        engaged_at=at(engaged),
        appointments={
            aid: AppointmentFacts((a[0][0], a[0][1], a[0][2]), _at(a[1]), a[2], a[3])
            for aid, a in appointments.items()
        },
    )


def encode_lead(lead: Lead) -> bytes:
    c = lead.customer
    steps = _steps(lead.steps)
    row: list[Any] = [
        FORMAT,
        lead.lead_id.hex,
        lead.tenant_id.hex,
        us(lead.created_at),
        us(lead.updated_at),
        lead.source.value,
        list(lead.origin),
        int(lead.stage),
        lead.stage_reason,
        lead.exhausted,
        lead.email_off,
        lead.sms_off,
        lead.nurture,
        list(lead.order_key) if lead.order_key else None,
        lead.order_id,
        lead.order_number,
        lead.order_status,
        lead.vehicle,
        lead.services,
        list(lead.customer_key) if lead.customer_key else None,
        [c.customer_id, c.first_name, c.last_name, c.email, c.phone]
        + ([c.preferred] if c.preferred is not None else []),
        list(lead.interest_key) if lead.interest_key else None,
        lead.service_of_interest,
        steps,
        lead.version,
        lead.seen,
    ]
    campaigns = lead.facts is not None or bool(lead.runs)
    if lead.replay_id is not None or lead.pause is not None or campaigns:
        row.append(lead.replay_id)
    if lead.pause is not None or campaigns:
        row.append(list(lead.pause) if lead.pause is not None else None)
    if campaigns:  # appended: records written before campaigns read as they always did
        row.append(
            [
                _encode_facts(lead.facts) if lead.facts is not None else None,
                {run: _steps(steps) for run, steps in sorted(lead.runs.items())},
            ]
        )
    return _dumps(row)


def decode_lead(raw: bytes) -> Lead:
    row = _loads(raw)
    if not isinstance(row, list) or not row or row[0] != FORMAT:
        raise ValueError("lead record: unknown format")
    (
        _,
        lead_id,
        tenant_id,
        created,
        updated,
        source,
        origin,
        stage,
        stage_reason,
        exhausted,
        email_off,
        sms_off,
        nurture,
        order_key,
        order_id,
        order_number,
        order_status,
        vehicle,
        services,
        customer_key,
        customer,
        interest_key,
        interest,
        steps,
        version,
        seen,
    ) = row[:26]
    return Lead(
        lead_id=uuid.UUID(hex=lead_id),
        tenant_id=uuid.UUID(hex=tenant_id),
        created_at=_at(created),
        updated_at=_at(updated),
        source=OrderSource(source),
        origin=(origin[0], origin[1]),
        stage=Stage(stage),
        stage_reason=stage_reason,
        exhausted=exhausted,
        email_off=email_off,
        sms_off=sms_off,
        nurture=nurture,
        order_key=(order_key[0], order_key[1], order_key[2]) if order_key else None,
        order_id=order_id,
        order_number=order_number,
        order_status=order_status,
        vehicle=vehicle,
        services=services,
        customer_key=(customer_key[0], customer_key[1]) if customer_key else None,
        customer=Customer(*customer),
        interest_key=(interest_key[0], interest_key[1]) if interest_key else None,
        service_of_interest=interest,
        steps=_decode_steps(steps),
        version=version,
        seen=seen,
        replay_id=row[26] if len(row) > 26 else None,
        pause=_pause(row[27]) if len(row) > 27 else None,
        facts=_decode_facts(row[28][0]) if len(row) > 28 and row[28][0] is not None else None,
        runs=(
            {run: _decode_steps(steps) for run, steps in row[28][1].items()}
            if len(row) > 28
            else {}
        ),
    )


def _pause(value: Any) -> tuple[str, bool] | None:
    """`Lead.pause`; a bare `true` (records written before the order key) is a stop that any
    stop or resume after it replaces."""
    if isinstance(value, list) and len(value) == 2:
        return (str(value[0]), bool(value[1]))
    return ("", True) if value else None
