"""Record SMS opt-ins at the source for test recipients (the gate sends no SMS without one)."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from schemas.base import Channel
from schemas.events import TouchPointCommand
from services.common.phones import normalize_phone

GRANT_SQL = """
INSERT INTO source_consent (company_id, channel, contact, source, opted_in, changed_at, event_key)
SELECT t.shopmonkey_company_id, 'sms', %(phone)s, 'shopmonkey', true, now(), 'test-grant'
  FROM tenants t WHERE t.id = %(tenant)s
ON CONFLICT (company_id, channel, contact) DO UPDATE SET opted_in = true
"""


async def grant_sms(db_url: str, commands: Iterable[TouchPointCommand]) -> None:
    """Each SMS command's phone opted in at its tenant's company, as a customer record says."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for cmd in commands:
            phone = normalize_phone(cmd.recipient.phone)
            if cmd.channel is Channel.SMS and phone is not None:
                await conn.execute(GRANT_SQL, {"phone": phone, "tenant": cmd.tenant_id})
