"""Attacks on what used to be computable or readable, tried against the real server:

- a lead id computed the way anyone could before (UUIDv5 of tenant and order number under the
  namespace in the source): before, it was exactly the id ingest answered with, so sequential
  order numbers gave every customer's lead (the chat link, the unsubscribe URL);
- the companies' Shopmonkey API keys and webhook secrets read from the database (a dump, a
  read-only account, a backup): before, they were plain text in the table (with the secret,
  anyone can forge that company's webhooks).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text

from schemas.base import ID_NAMESPACE, LeadIdKey, lead_id_for_order
from services.common.db.companies import new_webhook_secret
from tests.security.conftest import Server
from tests.security.support import client, signed_order
from tests.support.deployment_secrets import BOX, LEAD_IDS

pytestmark = pytest.mark.integration


async def test_a_lead_id_cannot_be_computed_from_the_order_number(
    server: Server, make_tenant: Any
) -> None:
    secret = new_webhook_secret()
    tenant, _ = await make_tenant(webhook_secret=secret)
    order_number = str(100_000 + uuid.uuid4().int % 900_000)
    body, headers = signed_order(secret, tenant, order_number)
    url = f"{server.public}/webhooks/shopmonkey/{tenant.id}/order"
    async with client() as http:
        async with http.post(url, data=body, headers=headers) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        body, headers = signed_order(secret, tenant, order_number)  # a retry: a new delivery
        async with http.post(url, data=body, headers=headers) as resp:
            again = await resp.json()
    lead = uuid.UUID(answer["leadId"])
    assert again["leadId"] == answer["leadId"]  # still deterministic
    computed = uuid.uuid5(ID_NAMESPACE, f"{tenant.id}:shopmonkey-order:{order_number}")
    assert lead != computed
    other_deployment = LeadIdKey(b"a secret guessed by someone outside, 32+ bytes")
    assert lead != lead_id_for_order(other_deployment, tenant.id, order_number)
    assert lead == lead_id_for_order(LEAD_IDS, tenant.id, order_number)  # ID_SECRET's
    # and the computed id opens nothing: the old unsubscribe URL is gone
    old_url = f"{server.public}/unsubscribe/{tenant.id}/{computed}"
    async with client() as http, http.post(old_url) as resp:
        assert resp.status == 410


async def test_no_secret_is_stored_in_plain_text(
    server: Server, make_tenant: Any, db_engine: Any
) -> None:
    secret, api_key = new_webhook_secret(), f"sm_live_{uuid.uuid4().hex}"
    tenant, _ = await make_tenant(webhook_secret=secret, api_key=api_key)
    async with db_engine.connect() as conn:
        columns = (
            await conn.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                    " AND data_type IN ('text', 'character varying', 'jsonb')"
                )
            )
        ).all()
        found = []
        for table, column in columns:
            for value in (secret, secret.removeprefix("whsec_"), api_key):
                hits = await conn.execute(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text LIKE :v'),
                    {"v": f"%{value}%"},
                )
                if hits.scalar_one():
                    found.append((table, column))
        stored = (
            await conn.execute(
                text(
                    "SELECT shopmonkey_api_key, webhook_secret FROM shopmonkey_companies"
                    " WHERE id = :id"
                ),
                {"id": tenant.shopmonkey_company_id},
            )
        ).one()
    assert found == [], f"plain-text secret in {found}"
    assert (BOX.decrypt(stored[0]), BOX.decrypt(stored[1])) == (api_key, secret)
    # the server decrypts it: a webhook signed with the secret is accepted, a forged one not
    body, headers = signed_order(secret, tenant, "42")
    forged_body, forged = signed_order(new_webhook_secret(), tenant, "43")
    url = f"{server.public}/webhooks/shopmonkey/{tenant.id}/order"
    async with client() as http:
        async with http.post(url, data=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
        async with http.post(url, data=forged_body, headers=forged) as resp:
            assert resp.status == 401
    assert api_key not in server.log_text() and secret not in server.log_text()
