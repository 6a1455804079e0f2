"""`/openapi.json`: every route of the app is in the document, documented ones from their
module's `OPENAPI_PATHS` fragment (also routes other modules mount later), and the document
is a valid OpenAPI 3.1 that schemathesis can load."""

from __future__ import annotations

from typing import Any

import schemathesis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from services.ingest.entrypoints.http import create_app
from services.ingest.entrypoints.openapi import build_document
from tests.unit.ingest.support_http import Harness

# This module plays "another area's routes module" (e.g. the provider-signal routes).
OPENAPI_PATHS: dict[str, Any] = {
    "/webhooks/test-provider/{kind}": {
        "post": {"summary": "documented elsewhere", "responses": {"204": {"description": "ok"}}}
    },
    "/api/thing": {"get": {"summary": "sub-app route", "responses": {"200": {"description": "x"}}}},
}


async def _provider(_: web.Request) -> web.Response:
    return web.Response(status=204)


async def _thing(_: web.Request) -> web.Response:
    return web.json_response({})


def _app() -> web.Application:
    harness = Harness()
    app = create_app(harness.settings, ingest=harness.ingest)
    app.router.add_post("/webhooks/test-provider/{kind}", _provider)
    sub = web.Application()
    sub.router.add_get("/api/thing", _thing)
    sub.router.add_get("/api/undocumented/{item_id}", _thing)
    app.add_subapp("/extra", sub)
    return app


async def test_document_lists_every_route_and_uses_each_modules_fragment() -> None:
    app = _app()
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/openapi.json")
        assert resp.status == 200
        doc = await resp.json()
    paths = doc["paths"]
    assert doc["openapi"].startswith("3.1")
    for path in (
        "/webhooks/shopmonkey/{tenant_id}/order",
        "/webhooks/shopmonkey/order",
        "/api/leads",
        "/healthz",
        "/readyz",
        "/openapi.json",
        "/u/{token}",
        "/unsubscribe/{tenantId}/{leadId}",
    ):
        assert path in paths, path
        assert "undocumented" not in str(paths[path]), path
    assert paths["/webhooks/test-provider/{kind}"]["post"]["summary"] == "documented elsewhere"
    assert paths["/extra/api/thing"]["get"]["summary"] == "sub-app route"
    undocumented = paths["/extra/api/undocumented/{item_id}"]["get"]
    assert "undocumented" in undocumented["summary"]
    assert undocumented["parameters"][0]["name"] == "item_id"
    assert not [p for p in paths if p.startswith(("/dashboard", "/metrics"))]  # admin only
    webhook = paths["/webhooks/shopmonkey/{tenant_id}/order"]["post"]
    assert {"200", "401", "404", "503"} <= set(webhook["responses"])
    ref = webhook["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[1] in doc["components"]["schemas"]


def test_schemathesis_loads_every_operation() -> None:
    doc = build_document(_app(), title="t", version="1")
    schema = schemathesis.openapi.from_dict(doc)
    operations = [result.ok() for result in schema.get_all_operations()]
    routes = {(m, p) for p, item in doc["paths"].items() for m in item if m != "parameters"}
    assert {(op.method.lower(), op.path) for op in operations} == routes
