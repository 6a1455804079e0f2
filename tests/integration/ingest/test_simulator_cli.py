"""`leadctl simulate shopmonkey` as `make run` uses it: a real process that serves the API,
writes its tenants to a JSON file and sends signed webhooks to a given URL over time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from services.ingest.domain.shopmonkey_signatures import (
    STANDARD_SCHEME,
    WebhookKeys,
    verify_standard,
)
from tests.conftest import ROOT, free_port

pytestmark = pytest.mark.integration


async def test_simulator_process_serves_writes_tenants_and_sends_signed_webhooks(
    tmp_path: Path,
) -> None:
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.match_info["tenant_id"], dict(request.headers), await request.read())
        )
        return web.json_response({"success": True, "leadId": None})

    receiver = web.Application()
    receiver.router.add_post("/webhooks/shopmonkey/{tenant_id}/order", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    hook_port, api_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    state = tmp_path / "shopmonkey.json"
    argv = (
        f"--port {api_port} --tenants 2 --orders 3 --seed 5 --rate 1200 "
        f"--webhook-url http://127.0.0.1:{hook_port} --state-file {state}"
    ).split()
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadctl.main", "simulate", "shopmonkey", *argv],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            await asyncio.sleep(0.1)
        doc = json.loads(state.read_text())
        companies = doc["companies"]
        assert len(companies) == 2 and doc["api_base"].endswith(f":{api_port}/v3")
        while len(received) < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        company = companies[0]
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{doc['api_base']}/order",
                headers={"Authorization": f"Bearer {company['api_key']}"},
            ) as resp,
        ):
            listing = await resp.json()
        assert resp.status == 200 and listing["meta"]["total"] >= 3
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        await runner.cleanup()
    assert len(received) >= 5
    secrets = {c["tenant_id"]: c["webhook_secret"] for c in companies}
    for tenant_id, headers, body in received:
        keys = WebhookKeys.from_secret(STANDARD_SCHEME, secrets[tenant_id])
        lower = {k.lower(): v for k, v in headers.items()}
        assert verify_standard(keys, lower, body, now=time.time()) == lower["webhook-id"]
        assert lower["x-attempt"] == "1" and json.loads(body)["apiVersion"] == "3"


async def test_simulator_companies_with_locations_and_company_global_webhooks(
    tmp_path: Path,
) -> None:
    """--companies 3,1: a company of three locations and a single-location one; with a URL
    naming only {company_id}, every location's changes go to its company's URL, signed with
    the company's secret, and carry their own companyId and locationId."""
    received: list[tuple[str, dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(
            (request.match_info["company_id"], dict(request.headers), await request.read())
        )
        return web.json_response({"success": True, "leadId": None})

    receiver = web.Application()
    receiver.router.add_post("/webhooks/shopmonkey/companies/{company_id}/order", hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    hook_port, api_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    state = tmp_path / "shopmonkey.json"
    url = f"http://127.0.0.1:{hook_port}/webhooks/shopmonkey/companies/{{company_id}}/order"
    argv = [
        *f"--port {api_port} --companies 3,1 --orders 2 --seed 9 --rate 2400".split(),
        *("--webhook-url", url, "--state-file", str(state)),
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "leadctl.main", "simulate", "shopmonkey", *argv],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not state.exists() and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            await asyncio.sleep(0.1)
        companies = json.loads(state.read_text())["companies"]
        locations = {c["company_id"]: [x["location_id"] for x in c["locations"]] for c in companies}
        assert sorted(len(v) for v in locations.values()) == [1, 3]
        seen: set[str] = set()
        while len(seen) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            seen = {
                json.loads(b)["data"]["locationId"]
                for _, _, b in received
                if json.loads(b)["table"] == "order"
            }
        assert len(seen) == 4, seen  # every location's orders came through the company URL
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        await runner.cleanup()
    secrets = {c["company_id"]: c["webhook_secret"] for c in companies}
    for company_id, headers, body in received:
        keys = WebhookKeys.from_secret(STANDARD_SCHEME, secrets[company_id])
        lower = {k.lower(): v for k, v in headers.items()}
        assert verify_standard(keys, lower, body, now=time.time()) == lower["webhook-id"]
        data = json.loads(body)["data"]
        assert data["companyId"] == company_id
        if json.loads(body)["table"] == "order":
            assert data["locationId"] in locations[company_id]
