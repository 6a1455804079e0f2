"""The dashboard's lead routes at the HTTP edge: a signed-in operator only (401), its own
locations' leads only (404 otherwise), actions refused from another site (403), bad input a
400 with its reason, and a done action a 202."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.common.db.engine import async_engine
from services.common.settings import CommonSettings
from services.ingest.bootstrap import build_dashboard
from services.ingest.entrypoints.dashboard import create_dashboard_app
from tests.unit.ingest.support_leads import Desk, fake_desk, lead_row
from tests.unit.ingest.support_operators import FakeOperatorStore, operator_access

AUSTIN, BOSTON = uuid.uuid4(), uuid.uuid4()
MINE, THEIRS = lead_row(AUSTIN), lead_row(BOSTON, tenant_name="Boston")
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[tuple[Client, Desk]]:
    store = FakeOperatorStore()
    store.add("austin@example.com", "location", tenants=frozenset({AUSTIN}))
    access = operator_access(store)
    desk = fake_desk(MINE, THEIRS)
    settings = CommonSettings()
    dashboard = build_dashboard(settings, async_engine("postgresql+psycopg://u@127.0.0.1:1/u"))
    root = web.Application()
    root.add_subapp(
        "/dashboard",
        create_dashboard_app(lambda: dashboard, lambda: access, desk=lambda: desk.desk),
    )
    async with TestClient(TestServer(root)) as c:
        yield c, desk


async def signed_in(c: Client) -> None:
    form = {"email": "austin@example.com", "password": "right password"}
    res = await c.post("/dashboard/sign-in", data=form, allow_redirects=False)
    assert res.status == 303


def act(c: Client, lead: uuid.UUID, body: object, **headers: str):  # type: ignore[no-untyped-def]
    data = body if isinstance(body, str) else json.dumps(body)
    return c.post(
        f"/dashboard/api/leads/{lead}/actions",
        data=data,
        headers={"Content-Type": "application/json", **headers},
    )


async def test_every_lead_route_needs_an_operator(client: tuple[Client, Desk]) -> None:
    c, desk = client
    for res in (
        await c.get("/dashboard/api/leads?q=ja"),
        await c.get(f"/dashboard/api/leads/{MINE['lead_id']}"),
        await act(c, MINE["lead_id"], {"action": "stop", "reason": "x"}),
    ):
        assert res.status == 401
    assert desk.publisher.published == []


async def test_search_open_and_stop_a_lead_of_its_own(client: tuple[Client, Desk]) -> None:
    c, desk = client
    await signed_in(c)
    assert desk.publisher.published == []
    found = await (await c.get("/dashboard/api/leads?q=JANE")).json()
    assert [x["lead_id"] for x in found["leads"]] == [str(MINE["lead_id"])]
    res = await act(c, MINE["lead_id"], {"action": "stop", "reason": "customer called"})
    assert res.status == 202, await res.text()
    page = await c.get(f"/dashboard/api/leads/{MINE['lead_id']}")
    assert page.status == 200 and "Content-Security-Policy" in page.headers
    [event] = (await page.json())["timeline"]
    assert "sequence_stopped" in event["summary"]


async def test_another_locations_lead_is_a_404(client: tuple[Client, Desk]) -> None:
    c, desk = client
    await signed_in(c)
    assert (await c.get(f"/dashboard/api/leads/{THEIRS['lead_id']}")).status == 404
    res = await act(c, THEIRS["lead_id"], {"action": "lost", "reason": "x"})
    assert res.status == 404 and desk.publisher.published == []


@pytest.mark.parametrize(
    ("path", "status"),
    [("/dashboard/api/leads/not-a-uuid", 400), ("/dashboard/api/leads?page=-1", 400),
     ("/dashboard/api/leads?page=99999", 400), ("/dashboard/api/leads?q=" + "a" * 200, 400)],
)  # fmt: skip
async def test_bad_reads_are_400(client: tuple[Client, Desk], path: str, status: int) -> None:
    c, _ = client
    await signed_in(c)
    res = await c.get(path)
    assert res.status == status and "error" in await res.json()


async def test_actions_from_another_site_or_malformed_are_refused(
    client: tuple[Client, Desk],
) -> None:
    c, desk = client
    await signed_in(c)
    lead = MINE["lead_id"]
    cross = await act(
        c, lead, {"action": "stop", "reason": "x"}, **{"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status == 403
    for body in ("{not json", "[1]", {"action": "stop"}, {"action": 1, "reason": "x"},
                 {"action": "erase", "reason": "x"}):  # fmt: skip
        res = await act(c, lead, body)
        assert res.status == 400, body
    form = await c.post(
        f"/dashboard/api/leads/{lead}/actions", data={"action": "stop", "reason": "x"}
    )
    assert form.status == 400  # a form post (what a cross-site page could send) is no action
    assert desk.publisher.published == []


async def test_kafka_down_is_a_503_saying_so(client: tuple[Client, Desk]) -> None:
    c, desk = client
    await signed_in(c)
    desk.publisher.fail = True
    res = await act(c, MINE["lead_id"], {"action": "stop", "reason": "customer called"})
    assert res.status == 503 and res.headers["Retry-After"] == "5"
    assert await res.json() == {"error": "Kafka unavailable, try again"}
