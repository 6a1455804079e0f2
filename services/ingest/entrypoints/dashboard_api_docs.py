"""OpenAPI fragment of the dashboard sub-application (merged into ingest's `/openapi.json`, see
`services.ingest.entrypoints.openapi`); keyed by the full paths under the `/dashboard` mount."""

from __future__ import annotations

from typing import Any

_JSON = "application/json"
_ERROR = {"$ref": "#/components/schemas/DashboardError"}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}


def _static(summary: str, content_type: str) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "tags": ["dashboard"],
            "responses": {"200": {"description": "The file", "content": {content_type: {}}}},
        }
    }


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/dashboard": {
        "get": {
            "summary": "Redirect to the dashboard page (`/dashboard/`).",
            "tags": ["dashboard"],
            "responses": {"302": {"description": "Location: /dashboard/"}},
        }
    },
    "/dashboard/": _static(
        "The operations dashboard (HTML; polls `api/summary` every few seconds).", "text/html"
    ),
    "/dashboard/dashboard.js": _static("The dashboard's script.", "application/javascript"),
    "/dashboard/dashboard.css": _static("The dashboard's style sheet.", "text/css"),
    "/dashboard/api/summary": {
        "get": {
            "summary": "Everything one dashboard refresh shows, for one location or all.",
            "description": (
                "Funnel by lifecycle state (leads table), touch points decided in the window by "
                "status and reason per time bucket and the whitelist skip rate (job_executions), "
                "per-location rows, delivery reports of sent messages, this process's webhook "
                "rate and latency, and consumer lag per group. Cached about 2 s."
            ),
            "tags": ["dashboard"],
            "parameters": [
                {
                    "name": "tenant",
                    "in": "query",
                    "required": False,
                    "description": "A location's tenant id, or `all` (default).",
                    "schema": {
                        "anyOf": [{"type": "string", "format": "uuid"}, {"const": "all"}],
                        "default": "all",
                    },
                },
                {
                    "name": "window",
                    "in": "query",
                    "required": False,
                    "description": "Minutes back from now (clamped to 5 … 10080).",
                    "schema": {"type": "integer", "default": 60},
                },
            ],
            "responses": {
                "200": {
                    "description": "The summary",
                    "content": {
                        _JSON: {"schema": {"$ref": "#/components/schemas/DashboardSummary"}}
                    },
                },
                "400": {
                    "description": "tenant is not a UUID nor `all`, or window not an integer",
                    "content": {_JSON: {"schema": _ERROR}},
                },
                "503": {
                    "description": "PostgreSQL did not answer",
                    "content": {_JSON: {"schema": _ERROR}},
                },
            },
        }
    },
}

OPENAPI_COMPONENTS: dict[str, dict[str, Any]] = {
    "DashboardError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string"}},
    },
    "DashboardSummary": {
        "type": "object",
        "required": [
            "generated_at",
            "tenant",
            "window_minutes",
            "bucket_seconds",
            "buckets",
            "funnel",
            "touchpoints",
            "skip_rate",
            "locations",
            "webhooks",
            "lag",
        ],
        "properties": {
            "generated_at": {"type": "string", "format": "date-time"},
            "tenant": {"type": "string"},
            "window_minutes": {"type": "integer"},
            "bucket_seconds": {"type": "integer"},
            "buckets": {"type": "array", "items": {"type": "integer"}},
            "tenants": {"type": "array", "items": {"type": "object"}},
            "funnel": _COUNTS,
            "leads_total": {"type": "integer"},
            "ingestion": {"type": "object"},
            "touchpoints": {
                "type": "object",
                "properties": {
                    "totals": _COUNTS,
                    "series": {"type": "object"},
                    "reasons": {"type": "array", "items": {"type": "object"}},
                },
            },
            "skip_rate": {
                "type": "object",
                "properties": {
                    "whitelist_skips": {"type": "integer"},
                    "decisions": {"type": "integer"},
                    "ratio": {"type": ["number", "null"]},
                },
            },
            "delivery": {"type": "array", "items": {"type": "object"}},
            "locations": {"type": "array", "items": {"type": "object"}},
            "webhooks": {"type": "object"},
            "lag": {"type": "object"},
        },
    },
}
