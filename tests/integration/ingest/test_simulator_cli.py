"""`leadctl simulate shopmonkey` as `make run` uses it: a real process that serves the API,
writes its tenants to a JSON file and sends signed webhooks to a given URL over time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
Received = list[tuple[str, dict[str, str], bytes]]


@contextlib.asynccontextmanager
async def simulator_and_receiver(
    route: str, key: str, args: str, tmp_path: Path
) -> AsyncIterator[tuple[Received, Path, int, int, subprocess.Popen[bytes]]]:
    """A webhook receiver on `route` (recording (match_info[key], headers, body)) and the
    simulator process (`args`, `{hook}`: the receiver's port) writing its state file; yields
    (received, state file, receiver port, API port, process) once the state file exists."""
    received: Received = []

    async def hook(request: web.Request) -> web.Response:
        received.append((request.match_info[key], dict(request.headers), await request.read()))
        return web.json_response({"success": True, "leadId": None})

    receiver = web.Application()
    receiver.router.add_post(route, hook)
    runner = web.AppRunner(receiver, access_log=None)
    await runner.setup()
    hook_port, api_port = free_port(), free_port()
    await web.TCPSite(runner, "127.0.0.1", hook_port).start()
    state = tmp_path / "shopmonkey.json"
    argv = [
        *f"--port {api_port} --state-file {state}".split(),
        *[a.replace("{hook}", str(hook_port)) for a in args.split()],
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
        yield received, state, hook_port, api_port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        await runner.cleanup()


async def wait_for(check: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)


def assert_signed(received: Received, secrets: dict[str, str]) -> None:
    """Every delivery verifies with the secret of the company (or tenant) it came for."""
    for owner, headers, body in received:
        keys = WebhookKeys.from_secret(STANDARD_SCHEME, secrets[owner])
        lower = {k.lower(): v for k, v in headers.items()}
        assert verify_standard(keys, lower, body, now=time.time()) == lower["webhook-id"]
        assert lower["x-attempt"] == "1" and json.loads(body)["apiVersion"] == "3"


async def test_simulator_process_serves_writes_tenants_and_sends_signed_webhooks(
    tmp_path: Path,
) -> None:
    args = "--tenants 2 --orders 3 --seed 5 --rate 1200 --webhook-url http://127.0.0.1:{hook}"
    async with simulator_and_receiver(
        "/webhooks/shopmonkey/{tenant_id}/order", "tenant_id", args, tmp_path
    ) as (received, state, _, api_port, _):
        doc = json.loads(state.read_text())
        companies = doc["companies"]
        assert len(companies) == 2 and doc["api_base"].endswith(f":{api_port}/v3")
        await wait_for(lambda: len(received) >= 5)
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
    assert len(received) >= 5
    assert_signed(received, {c["tenant_id"]: c["webhook_secret"] for c in companies})


async def test_simulator_companies_with_locations_and_company_global_webhooks(
    tmp_path: Path,
) -> None:
    """--companies 3,1: a company of three locations and a single-location one; with a URL
    naming only {company_id}, every location's changes go to its company's URL, signed with
    the company's secret, and carry their own companyId and locationId."""
    route = "/webhooks/shopmonkey/companies/{company_id}/order"
    args = f"--companies 3,1 --orders 2 --seed 9 --rate 2400 --webhook-url http://127.0.0.1:{{hook}}{route}"
    async with simulator_and_receiver(route, "company_id", args, tmp_path) as (
        received,
        state,
        *_,
    ):
        companies = json.loads(state.read_text())["companies"]
        locations = {c["company_id"]: [x["location_id"] for x in c["locations"]] for c in companies}
        assert sorted(len(v) for v in locations.values()) == [1, 3]

        def every_location_seen() -> bool:
            bodies = [json.loads(b) for _, _, b in received]
            return len({d["data"]["locationId"] for d in bodies if d["table"] == "order"}) == 4

        await wait_for(every_location_seen)
        assert every_location_seen()  # every location's orders came through the company URL
    assert_signed(received, {c["company_id"]: c["webhook_secret"] for c in companies})
    for company_id, _, body in received:
        doc = json.loads(body)
        assert doc["data"]["companyId"] == company_id
        if doc["table"] == "order":
            assert doc["data"]["locationId"] in locations[company_id]
