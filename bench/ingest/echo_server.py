"""The benchmark's baseline: a bare aiohttp JSON echo (parse the body, answer a small JSON),
no signature, no Kafka, no database. `python bench/ingest/echo_server.py PORT`."""

from __future__ import annotations

import sys

from aiohttp import web


async def echo(request: web.Request) -> web.Response:
    doc = await request.json()
    return web.json_response({"success": True, "table": doc.get("table")})


async def healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def main() -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/webhooks/shopmonkey/{tenant_id}/order", echo)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
