"""The fake providers' command-line fault injection, request record (`GET /__requests`) and
count (`GET /_admin/count`)."""

from __future__ import annotations

import gc
from typing import Any

import aiohttp
from aiohttp import web
from click.testing import CliRunner

from fakes._recorder import FREEZE_EVERY, state_from_options
from fakes.sendgrid_server import create_app as sendgrid_app
from fakes.sendgrid_server import main as sendgrid_main
from fakes.twilio_server import main as twilio_main

MAIL = {
    "personalizations": [{"to": [{"email": "sam@example.com"}]}],
    "from": {"email": "noreply@shop.example"},
    "subject": "Hi",
    "content": [{"type": "text/plain", "value": "Hello"}],
}


def test_both_fakes_offer_the_fault_flags() -> None:
    for main in (sendgrid_main, twilio_main):
        out = CliRunner().invoke(main, ["--help"]).output
        for flag in ("--host", "--port", "--fail-rate", "--fail-status", "--retry-after"):
            assert flag in out


async def _post_all(url: str, n: int) -> list[tuple[int, str | None]]:
    got = []
    async with aiohttp.ClientSession() as http:
        for _ in range(n):
            async with http.post(
                f"{url}/v3/mail/send", json=MAIL, headers={"Authorization": "Bearer SG.x"}
            ) as resp:
                got.append((resp.status, resp.headers.get("Retry-After")))
    return got


async def test_cli_fault_plan_and_request_record() -> None:
    state = state_from_options(
        fail_rate=0.5, fail_status=(429,), retry_after=2.0, latency=0.0, seed=3
    )
    runner = web.AppRunner(sendgrid_app(state=state))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}"
    try:
        got = await _post_all(url, 40)
        async with aiohttp.ClientSession() as http:
            record: dict[str, Any] = await (await http.get(f"{url}/__requests")).json()
            count = await (await http.get(f"{url}/_admin/count?path=/v3/mail/send")).json()
            elsewhere = await (await http.get(f"{url}/_admin/count?path=/nowhere")).json()
    finally:
        await runner.cleanup()
    statuses = [s for s, _ in got]
    assert set(statuses) == {202, 429}
    assert 8 <= statuses.count(429) <= 32  # about half
    assert all(ra == "2.0" for s, ra in got if s == 429)
    assert [r["status"] for r in record["requests"]] == statuses
    assert sum(r["accepted"] for r in record["requests"]) == statuses.count(202)
    # the count a benchmark polls, without the records
    assert count == {"requests": 40, "accepted": statuses.count(202)}
    assert elsewhere == {"requests": 0, "accepted": 0}


async def test_the_growing_record_is_frozen_out_of_the_collectors_reach() -> None:
    """A full collection walking thousands of recorded requests stalled the fake in the middle
    of a latency benchmark: every FREEZE_EVERY requests the record is frozen."""
    runner = web.AppRunner(sendgrid_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    frozen_before = gc.get_freeze_count()
    try:
        await _post_all(f"http://127.0.0.1:{port}", FREEZE_EVERY)
    finally:
        await runner.cleanup()
        frozen_after = gc.get_freeze_count()
        gc.unfreeze()
    assert frozen_after > frozen_before + FREEZE_EVERY  # the record's entries among them
