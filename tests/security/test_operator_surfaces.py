"""Attacks on the operator surfaces, tried against the real server (`leadctl ingest`):

- the dashboard, its JSON and the metrics asked for anonymously on the public port;
- the admin listener reached from another address than loopback;
- the admin listener's JSON asked for without a session, with a forged session or token;
- a location operator asking for another location's figures (by id, or hidden in "all");
- a sign-in brute force (one account; then password spraying across accounts).

Before: the public port served `/dashboard`, `/dashboard/api/summary` (every location's name,
id, funnel and volumes) and `/metrics` to anyone, and there was no sign-in at all.
"""

from __future__ import annotations

import socket
import uuid
from typing import Any

import aiohttp
import pytest

from tests.security.conftest import MAX_FAILURES, Server
from tests.security.support import client
from tests.support.operators import Account, add_account

pytestmark = pytest.mark.integration
SURFACES = (
    "/dashboard",
    "/dashboard/",
    "/dashboard/api/summary",
    "/dashboard/api/summary?tenant=all&window=60",
    "/dashboard/sign-in",
    "/metrics",
)


async def sign_in(http: aiohttp.ClientSession, server: Server, account: Account) -> str:
    """Sign in with the form; the session cookie's value."""
    form = {"email": account.email, "password": account.password}
    async with http.post(
        server.admin + "/dashboard/sign-in", data=form, allow_redirects=False
    ) as resp:
        assert resp.status == 303, await resp.text()
        return resp.cookies["lo_operator"].value


async def test_the_public_port_serves_no_dashboard_api_or_metrics(
    server: Server, make_tenant: Any
) -> None:
    tenant, _ = await make_tenant(name=f"Secret Location {uuid.uuid4().hex[:6]}")
    async with client() as http:
        for path in SURFACES:
            async with http.get(server.public + path, allow_redirects=False) as resp:
                body = await resp.text()
                assert resp.status == 404, (path, resp.status)
                assert str(tenant.id) not in body and tenant.name not in body
                assert "ingest_webhook_requests_total" not in body
        async with http.get(server.public + "/openapi.json") as resp:
            paths = (await resp.json())["paths"]
        assert not [p for p in paths if p.startswith(("/dashboard", "/metrics"))]


def test_the_admin_listener_is_loopback_only_the_public_one_is_not(server: Server) -> None:
    """Another address of this machine (127.0.0.2 stands for any interface but loopback's
    127.0.0.1) reaches the public port, never the admin port."""
    with socket.create_connection(("127.0.0.2", server.public_port), timeout=2):
        pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", server.admin_port), timeout=2)


async def test_anonymous_forged_or_altered_credentials_get_no_figures(
    server: Server, make_tenant: Any, db_engine: Any
) -> None:
    tenant, _ = await make_tenant()
    account = await add_account(db_engine)
    forged_token = f"lop_{account.id.hex}_{'A' * 43}"
    async with client("127.0.0.4") as http:
        async with http.get(server.admin + "/dashboard/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "sign-in"
        for headers, cookies in (
            ({}, {}),
            ({"Authorization": f"Bearer {forged_token}"}, {}),
            ({"Authorization": f"Bearer {account.token[:-1]}x"}, {}),
            ({"Authorization": f"Basic {account.token}"}, {}),
            ({}, {"lo_operator": "AQ" + "A" * 40}),
        ):
            http.cookie_jar.clear()
            http.cookie_jar.update_cookies(cookies)
            async with http.get(server.admin + "/dashboard/api/summary", headers=headers) as resp:
                body = await resp.text()
                assert resp.status == 401, (headers, cookies, body)
                assert str(tenant.id) not in body
        # a session cookie that was valid, altered by one character
        http.cookie_jar.clear()
        value = await sign_in(http, server, account)
        altered = value[:20] + ("B" if value[20] != "B" else "C") + value[21:]
        http.cookie_jar.clear()
        http.cookie_jar.update_cookies({"lo_operator": altered})
        async with http.get(server.admin + "/dashboard/api/summary") as resp:
            assert resp.status == 401


async def test_a_location_operator_never_sees_another_location(
    server: Server, make_tenant: Any, db_engine: Any
) -> None:
    mine, _ = await make_tenant(name=f"Mine {uuid.uuid4().hex[:6]}")
    theirs, _ = await make_tenant(name=f"Theirs {uuid.uuid4().hex[:6]}")
    account = await add_account(db_engine, role="location", tenants=[mine.id])
    async with client() as http:
        await sign_in(http, server, account)
        summary = server.admin + "/dashboard/api/summary"
        async with http.get(summary, params={"tenant": str(mine.id)}) as resp:
            assert resp.status == 200
        async with http.get(summary, params={"tenant": str(theirs.id)}) as resp:
            assert resp.status == 404  # as unknown as a tenant that does not exist
            assert theirs.name not in await resp.text()
        async with http.get(summary, params={"tenant": str(uuid.uuid4())}) as resp:
            assert resp.status == 404
        async with http.get(summary, params={"tenant": "all"}) as resp:
            body = await resp.text()
            assert resp.status == 200
        assert mine.name in body and theirs.name not in body and str(theirs.id) not in body
    # the same with the operator's API token, no cookie
    async with client() as http:
        auth = {"Authorization": f"Bearer {account.token}"}
        async with http.get(summary, params={"tenant": str(theirs.id)}, headers=auth) as resp:
            assert resp.status == 404
        async with http.get(summary, headers=auth) as resp:
            assert resp.status == 200 and theirs.name not in await resp.text()


async def test_sign_in_brute_force_is_stopped_and_logged_without_secrets(
    server: Server, db_engine: Any
) -> None:
    account = await add_account(db_engine)
    guesses = [f"guess-{n}-{uuid.uuid4().hex[:6]}" for n in range(MAX_FAILURES)]
    async with client("127.0.0.5") as http:
        sign_in = server.admin + "/dashboard/sign-in"
        for guess in guesses:
            form = {"email": account.email, "password": guess}
            async with http.post(sign_in, data=form, allow_redirects=False) as resp:
                assert resp.status == 401 and "Set-Cookie" not in resp.headers
        # the right password now waits out the window (so guessing cannot go on)
        form = {"email": account.email, "password": account.password}
        async with http.post(sign_in, data=form, allow_redirects=False) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) > 0
            assert "Set-Cookie" not in resp.headers
    log = server.log_text()
    masked = account.email[0] + "***@example.com"
    assert f"operator sign-in failed for {masked} from 127.0.0.5" in log
    assert "too many failures" in log
    assert account.email not in log and account.password not in log
    assert not [g for g in guesses if g in log]
    # password spraying: one guess per account, from one address, is stopped too
    async with client("127.0.0.6") as http:
        statuses = []
        for n in range(25):
            form = {"email": f"user{n}@example.com", "password": "Winter2026!"}
            async with http.post(sign_in, data=form, allow_redirects=False) as resp:
                statuses.append(resp.status)
    assert statuses[:20] == [401] * 20 and set(statuses[20:]) == {429}
    # another address is not locked out by it
    async with client("127.0.0.7") as http:
        form = {"email": account.email + ".other", "password": "x"}
        async with http.post(sign_in, data=form, allow_redirects=False) as resp:
            assert resp.status == 401
