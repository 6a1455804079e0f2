"""Attacks on the unsubscribe link, tried against the real server (`leadctl ingest`, real
PostgreSQL and Kafka):

- the old unsigned URL `/unsubscribe/<tenantId>/<leadId>` (tenant ids are in every email,
  lead ids were computable): before, a POST to it unsubscribed the customer at every location;
- a link with no token, an altered token, a truncated one, one signed with another key, one of
  another purpose (an operator session).

Each must change nothing (no suppression row, no signal on Kafka) and say so; a genuine link
still works (the control).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from schemas.base import Channel
from services.common.domain.signed_links import (
    OPERATOR_SESSION,
    UNSUBSCRIBE,
    Signer,
    unsubscribe_token,
)
from tests.integration.ingest.conftest import read_topic
from tests.security.conftest import Server
from tests.security.support import add_lead, client
from tests.support.deployment_secrets import LINK_SIGNING_KEY, UNSUBSCRIBE_SIGNER

pytestmark = pytest.mark.integration


def link(signer: Signer, tenant: uuid.UUID, lead: uuid.UUID, email: str) -> str:
    token = unsubscribe_token(
        signer, tenant_id=tenant, lead_id=lead, channel=Channel.EMAIL, contact=email
    )
    return f"/u/{token}"


async def suppressions(engine: Any, email: str) -> list[tuple[Any, ...]]:
    from sqlalchemy import text

    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tenant_id, reason FROM suppressions WHERE contact = :c"), {"c": email}
        )
        return [tuple(r) for r in rows]


async def test_forged_altered_foreign_and_old_links_change_nothing(
    server: Server, make_tenant: Any, db_engine: Any, kafka_bootstrap: str
) -> None:
    tenant, _ = await make_tenant()
    email = f"victim.{uuid.uuid4().hex[:8]}@example.com"
    lead = await add_lead(db_engine, tenant.id, email)
    genuine = link(UNSUBSCRIBE_SIGNER, tenant.id, lead, email)
    token = genuine.removeprefix("/u/")
    attacks = {
        "old unsigned route": f"/unsubscribe/{tenant.id}/{lead}",
        "no token": "/u/",
        "altered": "/u/" + token[:30] + ("A" if token[30] != "A" else "B") + token[31:],
        "truncated": "/u/" + token[:-4],
        "another deployment's key": link(Signer([b"k" * 40], UNSUBSCRIBE), tenant.id, lead, email),
        "another purpose's signature": link(
            Signer([LINK_SIGNING_KEY.encode()], OPERATOR_SESSION), tenant.id, lead, email
        ),
    }
    async with client() as http:
        for name, path in attacks.items():
            for method in ("GET", "POST"):
                async with http.request(
                    method, server.public + path, data={"List-Unsubscribe": "One-Click"}
                ) as resp:
                    body = await resp.text()
                    assert resp.status in (400, 404, 410), (name, method, resp.status)
                    assert "Nothing was changed" in body, (name, body)
        assert await suppressions(db_engine, email) == []
        signals = read_topic(kafka_bootstrap, server.topics.contact_signals, timeout=5)
        assert not [r for r in signals if str(lead) in r.value.decode()]

        # the genuine link: GET only asks (link scanners), POST (one-click) unsubscribes
        async with http.get(server.public + genuine) as resp:
            assert resp.status == 200 and "Unsubscribe" in await resp.text()
        assert await suppressions(db_engine, email) == []
        async with http.post(
            server.public + genuine, data={"List-Unsubscribe": "One-Click"}
        ) as resp:
            text = await resp.text()
            assert resp.status == 200 and tenant.name in text
    assert await suppressions(db_engine, email) == [(tenant.id, "list_unsubscribe")]
