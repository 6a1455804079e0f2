"""`GET /openapi.json`: the OpenAPI 3.1 document of every HTTP endpoint of the ingest app.

Agreement for every module that adds routes to the ingest app (webhooks, website leads, the
provider-signal routes, the dashboard sub-app, ...):

- The module exports a module-level `OPENAPI_PATHS: dict[str, dict]`: an OpenAPI "paths"
  fragment keyed by the path as the module's router declares it (aiohttp's `{name}`
  placeholders are OpenAPI's too). For a sub-app, key it by the path inside the sub-app
  (`/api/summary`) or the full one (`/dashboard/api/summary`); the mount prefix is added here.
- Optionally `OPENAPI_COMPONENTS: dict[str, dict]` of schemas, merged into
  `components.schemas` (refer to them as `#/components/schemas/<Name>`; prefix names with
  your area to avoid clashes).
- Nothing else: the document is built from the live router at request time. Each route's
  handler's `__module__` names the module whose fragment documents it, so a route mounted
  later (e.g. by `add_signal_routes`) is picked up without touching this file. A route that
  no fragment documents still appears, with its path parameters and "undocumented", so the
  document always lists every endpoint (and the schemathesis test fuzzes it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import web

PathItem = dict[str, Any]
METHODS = ("get", "put", "post", "delete", "options", "patch")
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")

#: Routes of services.common.observability (not ours to edit), documented here.
COMMON_PATHS: dict[str, PathItem] = {
    "/healthz": {
        "get": {
            "summary": "Liveness: the process serves HTTP.",
            "tags": ["operations"],
            "responses": {"200": {"description": "Alive", "content": {"application/json": {}}}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness: Kafka and PostgreSQL answer.",
            "tags": ["operations"],
            "responses": {
                "200": {"description": "Ready", "content": {"application/json": {}}},
                "503": {"description": "A dependency is down", "content": {"application/json": {}}},
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics (text exposition format).",
            "tags": ["operations"],
            "responses": {"200": {"description": "Metrics", "content": {"text/plain": {}}}},
        }
    },
}


def _routes(app: web.Application, prefix: str = "") -> Iterator[tuple[str, str, Any, str]]:
    """(full path, local path, handler, method) of every route, sub-apps included."""
    for resource in app.router.resources():
        info = resource.get_info()
        sub = info.get("app")
        if isinstance(sub, web.Application):
            yield from _routes(sub, prefix + str(info.get("prefix", "")).rstrip("/"))
            continue
        full = resource.canonical  # aiohttp already prefixes a mounted sub-app's resources
        if isinstance(resource, web.StaticResource):
            full = full.rstrip("/") + "/{filename}"
        local = full[len(prefix) :] if prefix and full.startswith(prefix) else full
        for route in resource:
            method = route.method.lower()
            if method in METHODS:
                yield full, local or "/", route.handler, method


def _fragment(handler: Any, attribute: str) -> Mapping[str, Any]:
    module = sys.modules.get(getattr(handler, "__module__", "") or "")
    value = getattr(module, attribute, None) if module is not None else None
    return value if isinstance(value, Mapping) else {}


def _undocumented(path: str, method: str) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PARAM.findall(path)
    ]
    operation: dict[str, Any] = {
        "summary": f"{method.upper()} {path} (undocumented)",
        "responses": {"default": {"description": "Any answer"}},
    }
    if params:
        operation["parameters"] = params
    return operation


def _openapi_path(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def build_document(app: web.Application, *, title: str, version: str) -> dict[str, Any]:
    paths: dict[str, PathItem] = {}
    components: dict[str, Any] = {}
    for full, local, handler, method in _routes(app):
        fragment = {**COMMON_PATHS, **_fragment(handler, "OPENAPI_PATHS")}
        components.update(_fragment(handler, "OPENAPI_COMPONENTS"))
        item = fragment.get(full) or fragment.get(local) or {}
        operation = item.get(method) if isinstance(item, Mapping) else None
        key = _openapi_path(full)
        entry = paths.setdefault(key, {})
        entry[method] = (
            dict(operation) if isinstance(operation, Mapping) else _undocumented(full, method)
        )
        shared = item.get("parameters") if isinstance(item, Mapping) else None
        if shared and "parameters" not in entry:
            entry["parameters"] = shared
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": components},
    }


def add_openapi_route(app: web.Application, *, title: str, version: str) -> None:
    """Serve `/openapi.json`, built once from the router on first request (routes are fixed
    by then: aiohttp freezes the router at start)."""
    cache: list[dict[str, Any]] = []

    async def openapi(_: web.Request) -> web.Response:
        if not cache:
            cache.append(build_document(app, title=title, version=version))
        return web.json_response(cache[0])

    app.router.add_get("/openapi.json", openapi)


OPENAPI_PATHS: dict[str, PathItem] = {
    "/openapi.json": {
        "get": {
            "summary": "This OpenAPI document.",
            "tags": ["operations"],
            "responses": {
                "200": {"description": "OpenAPI 3.1", "content": {"application/json": {}}}
            },
        }
    }
}
