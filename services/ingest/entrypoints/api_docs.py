"""OpenAPI fragment of the routes `entrypoints.http` serves (see `entrypoints.openapi`)."""

from __future__ import annotations

from typing import Any

_JSON = "application/json"


def _json(schema: str, description: str, **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }
    if headers:
        answer["headers"] = headers
    return answer


#: What a client address that keeps failing authentication is answered.
_THROTTLED = "Too many failed authentications from this address; retry after Retry-After"
_RETRY_AFTER = {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
_HEADER = {"in": "header", "required": False, "schema": {"type": "string"}}
WEBHOOK_HEADERS = [
    {"name": "webhook-id", **_HEADER, "description": "Standard Webhooks message id"},
    {"name": "webhook-timestamp", **_HEADER, "description": "Unix seconds (±5 min)"},
    {
        "name": "webhook-signature",
        **_HEADER,
        "description": "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`",
    },
    {
        "name": "X-Shopmonkey-Signature",
        **_HEADER,
        "description": "Hex HMAC-SHA256 of the body (companies configured for `legacy_hmac`)",
    },
    {"name": "X-Attempt", **_HEADER, "description": "Delivery attempt (informational)"},
]
_WEBHOOK_RESPONSES = {
    "200": _json("IngestAccepted", "In Kafka (acknowledged); the same leadId on every retry"),
    "202": _json(
        "IngestIgnored",
        "Acknowledged, nothing produced: another table, DEMO_MODE, or a record of no tenant here "
        "(`unknown_location`, `other_company`, `no_location`, `invalid_location`: the reason)",
    ),
    "400": _json("IngestError", "Not JSON, not the v3 envelope, missing fields"),
    "401": _json("IngestError", "Missing, wrong or stale signature (one generic reason)"),
    "429": _json("IngestError", _THROTTLED, **{"Retry-After": _RETRY_AFTER}),
    "404": _json("IngestError", "Unknown or inactive tenant (company)"),
    "413": _json("IngestError", "Body over MAX_BODY_BYTES (1 MiB)"),
    "415": _json("IngestError", "Not application/json"),
    "503": _json(
        "IngestError", "Kafka (or Shopmonkey) unavailable", **{"Retry-After": _RETRY_AFTER}
    ),
}


def _webhook(summary: str, *, path_param: dict[str, Any] | None = None) -> dict[str, Any]:
    params = list(WEBHOOK_HEADERS)
    if path_param is not None:
        params.insert(0, {"in": "path", "required": True, **path_param})
    return {
        "post": {
            "summary": summary,
            "tags": ["webhooks"],
            "parameters": params,
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/ShopmonkeyEnvelope"}}},
            },
            "responses": _WEBHOOK_RESPONSES,
        }
    }


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/webhooks/shopmonkey/companies/{company_id}/order": _webhook(
        "Shopmonkey v3 webhook of a company (its company-global webhook): each order goes to "
        "the tenant of its own location, a customer change to every location",
        path_param={"name": "company_id", "schema": {"type": "string", "maxLength": 100}},
    ),
    "/webhooks/shopmonkey/{tenant_id}/order": _webhook(
        "Shopmonkey v3 webhook of one location (verified with its company's secret; an order "
        "of another location goes to that location's tenant)",
        path_param={"name": "tenant_id", "schema": {"type": "string", "format": "uuid"}},
    ),
    "/webhooks/shopmonkey/order": _webhook(
        "Shopmonkey webhook of the TENANT_ID location (the seed's endpoint)"
    ),
    "/api/leads": {
        "post": {
            "summary": "A website lead form; idempotent on submission_id",
            "tags": ["website"],
            "parameters": [
                {
                    "name": "Authorization",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "`Bearer <the location's website API key>`",
                }
            ],
            "requestBody": {
                "required": True,
                "content": {_JSON: {"schema": {"$ref": "#/components/schemas/WebsiteLeadForm"}}},
            },
            "responses": {
                "200": _json("IngestAccepted", "In Kafka (acknowledged)"),
                "202": _json("IngestIgnored", "Dropped by DEMO_MODE"),
                "400": _json("IngestError", "Invalid form"),
                "401": _json("IngestError", "Missing or unknown API key"),
                "429": _json("IngestError", _THROTTLED, **{"Retry-After": _RETRY_AFTER}),
                "413": _json("IngestError", "Body too large"),
                "415": _json("IngestError", "Not application/json"),
                "503": _json("IngestError", "Kafka unavailable", **{"Retry-After": _RETRY_AFTER}),
            },
        }
    },
}

OPENAPI_COMPONENTS: dict[str, dict[str, Any]] = {
    "ShopmonkeyEnvelope": {
        "type": "object",
        "required": ["apiVersion", "operation", "table", "data"],
        "properties": {
            "apiVersion": {"type": ["string", "integer"]},
            "operation": {"type": "string", "enum": ["INSERT", "UPDATE", "DELETE"]},
            "table": {"type": "string", "examples": ["order", "customer"]},
            "data": {"type": "object", "description": "The record (`id`, `meta.version`, ...)"},
            "diff": {"type": "array", "items": {"type": "string"}},
        },
    },
    "WebsiteLeadForm": {
        "type": "object",
        "required": ["submission_id"],
        "properties": {
            "submission_id": {"type": "string", "minLength": 1, "maxLength": 200},
            "name": {"type": "string", "maxLength": 200},
            "email": {"type": "string", "format": "email", "maxLength": 320},
            "phone": {"type": "string", "maxLength": 40},
            "vehicle": {"type": "string", "maxLength": 200},
            "service_of_interest": {"type": "string", "maxLength": 200},
        },
    },
    "IngestAccepted": {
        "type": "object",
        "required": ["success", "leadId"],
        "properties": {
            "success": {"const": True},
            "leadId": {"type": ["string", "null"], "format": "uuid"},
            "eventId": {"type": "string"},
        },
    },
    "IngestIgnored": {
        "type": "object",
        "properties": {"success": {"const": True}, "ignored": {"type": "string"}},
    },
    "IngestError": {
        "type": "object",
        "required": ["success", "reason"],
        "properties": {"success": {"const": False}, "reason": {"type": "string"}},
    },
}
