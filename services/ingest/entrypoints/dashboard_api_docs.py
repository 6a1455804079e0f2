"""OpenAPI fragment of the dashboard sub-application (merged into the admin listener's
`/openapi.json`, see `services.ingest.entrypoints.openapi`); keyed by the full paths under the
`/dashboard` mount."""

from __future__ import annotations

from typing import Any

from services.ingest.service_layer.dashboard import WINDOWS

_JSON = "application/json"
_HTML: dict[str, Any] = {"text/html": {}}
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


def _param(name: str, where: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path", "schema": schema}


_LEAD_ID = _param("lead_id", "path", {"type": "string", "format": "uuid"})


def _answers(*answers: tuple[str, str]) -> dict[str, Any]:
    """JSON responses: an object when it worked, the error shape otherwise."""
    return {
        status: {
            "description": description,
            "content": {_JSON: {"schema": {"type": "object"} if status < "300" else _ERROR}},
        }
        for status, description in answers
    }


OPENAPI_PATHS: dict[str, dict[str, Any]] = {
    "/dashboard": {
        "get": {
            "summary": "Redirect to the dashboard page (`/dashboard/`).",
            "tags": ["dashboard"],
            "responses": {"302": {"description": "Location: /dashboard/"}},
        }
    },
    "/dashboard/": {
        "get": {
            "summary": "The operations dashboard (HTML; polls `api/summary` every few seconds).",
            "description": "Needs a signed-in operator (session cookie); else 303 to `sign-in`.",
            "tags": ["dashboard"],
            "responses": {
                "200": {"description": "The page", "content": _HTML},
                "303": {"description": "Not signed in: Location: sign-in"},
            },
        }
    },
    "/dashboard/sign-in": {
        "get": {
            "summary": "The operator sign-in form.",
            "tags": ["dashboard"],
            "responses": {"200": {"description": "The form", "content": _HTML}},
        },
        "post": {
            "summary": "Sign in (email, password): sets the session cookie.",
            "description": (
                "Signed, HttpOnly, SameSite=Strict, Path=/ (Secure and `__Host-` over TLS). "
                "Failures are limited per account and per address (429 + Retry-After) and "
                "logged with a masked email; a form posted from another site is 403."
            ),
            "tags": ["dashboard"],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "email": {"type": "string"},
                                "password": {"type": "string"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "303": {"description": "Signed in: Set-Cookie, Location: ./"},
                "401": {"description": "Wrong email or password", "content": _HTML},
                "403": {"description": "Sent from another site", "content": _HTML},
                "429": {"description": "Too many failed sign-ins", "content": _HTML},
            },
        },
    },
    "/dashboard/sign-out": {
        "post": {
            "summary": "Sign out: clears the session cookie.",
            "tags": ["dashboard"],
            "responses": {
                "303": {"description": "Location: sign-in"},
                "403": {"description": "Sent from another site", "content": {_JSON: {}}},
            },
        }
    },
    "/dashboard/dashboard.js": _static("The dashboard's script.", "application/javascript"),
    "/dashboard/dashboard.css": _static("The dashboard's style sheet.", "text/css"),
    "/dashboard/leads.js": _static("The dashboard's leads script.", "application/javascript"),
    "/dashboard/api/leads": {
        "get": {
            "summary": "Search the operator's leads (25 a page, newest change first).",
            "description": (
                "A prefix, in any case, of a name, the full name, an email, an order number or "
                "a lead id, or 4+ digits of a phone; contacts masked unless whitelisted. Only "
                "leads of locations the operator sees."
            ),
            "tags": ["dashboard"],
            "parameters": [
                _param("q", "query", {"type": "string", "maxLength": 100}),
                _param("page", "query", {"type": "integer", "minimum": 0, "maximum": 200}),
            ],
            "responses": _answers(
                ("200", "{query, page, leads: [...], more}"),
                ("400", "q or page refused"),
                ("401", "Not signed in"),
                ("503", "PostgreSQL did not answer"),
            ),
        }
    },
    "/dashboard/api/leads/{lead_id}": {
        "get": {
            "summary": "A lead's page: its row, touch points and timeline from Kafka.",
            "tags": ["dashboard"],
            "parameters": [_LEAD_ID],
            "responses": _answers(
                ("200", "What `leadctl leads show --json` prints, and the actions"),
                ("400", "Not a UUID"),
                ("401", "Not signed in"),
                ("404", "No such lead at a location the operator sees"),
            ),
        }
    },
    "/dashboard/api/leads/{lead_id}/actions": {
        "post": {
            "summary": "Stop, resume, mark lost or suppress: a contact signal through Kafka.",
            "description": (
                "Audited in the signal (source `dashboard`, when, who and why); a suppression is "
                "listed first. Refused (403) when the browser says it comes from another site."
            ),
            "tags": ["dashboard"],
            "parameters": [_LEAD_ID],
            "requestBody": {
                "required": True,
                "content": {
                    _JSON: {
                        "schema": {
                            "type": "object",
                            "required": ["action", "reason"],
                            "properties": {
                                "action": {"enum": ["stop", "resume", "lost", "suppress"]},
                                "reason": {"type": "string", "minLength": 1, "maxLength": 150},
                            },
                        }
                    }
                },
            },
            "responses": _answers(
                ("202", "Kafka has the signal(s)"),
                ("400", "Bad action, reason or body"),
                ("401", "Not signed in"),
                ("403", "Sent from another site"),
                ("404", "No such lead at a location the operator sees"),
                ("503", "Kafka or PostgreSQL did not answer"),
            ),
        }
    },
    "/dashboard/api/summary": {
        "get": {
            "summary": "Everything one dashboard refresh shows, for one location or all.",
            "description": (
                "Needs the session cookie or `Authorization: Bearer <operator API token>`. "
                "Funnel by lifecycle state (leads table), touch points decided in the window by "
                "status and reason per time bucket and the whitelist skip rate (job_executions), "
                "per-location rows, delivery reports of sent messages; for hq operators also "
                "this process's webhook rate and latency and consumer lag per group. Only the "
                "locations the operator sees: another one's id is a 404. Cached about 2 s; "
                "identical concurrent requests share one query."
            ),
            "tags": ["dashboard"],
            "parameters": [
                {
                    "name": "tenant",
                    "in": "query",
                    "required": False,
                    "description": (
                        "A location's tenant id the operator sees, or `all` (default: every "
                        "location the operator sees)."
                    ),
                    "schema": {
                        "anyOf": [{"type": "string", "format": "uuid"}, {"const": "all"}],
                        "default": "all",
                    },
                },
                {
                    "name": "window",
                    "in": "query",
                    "required": False,
                    "description": "Minutes back from now: one of the windows the page offers.",
                    "schema": {"type": "integer", "enum": list(WINDOWS), "default": 60},
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
                    "description": "tenant is not a UUID nor `all`, or window not offered",
                    "content": {_JSON: {"schema": _ERROR}},
                },
                "401": {
                    "description": "No session and no valid operator API token",
                    "content": {_JSON: {"schema": _ERROR}},
                },
                "404": {
                    "description": "A location this operator does not see (or none)",
                    "content": {_JSON: {"schema": _ERROR}},
                },
                "429": {
                    "description": "Too many bad API tokens from this address",
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

_WORK = {
    "type": "object",
    "properties": {"services": {"type": "integer"}, "cents": {"type": "integer"}},
}
#: Declined work of the leads shown (also each location's, `locations[].declined`).
_DECLINED = {
    "type": "object",
    "description": (
        "Declined or deferred services of the leads' invoiced orders, which the declined-work"
        " campaign follows up, and those a later order of the customer brought back (revived);"
        " values in cents, every lead (not the window)."
    ),
    "properties": {
        "followed_up": _WORK,
        "brought_back": _WORK,
        "value_ratio": {"type": ["number", "null"]},
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
            "viewer": {
                "type": "object",
                "properties": {"email": {"type": "string"}, "role": {"type": "string"}},
            },
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
            "declined": _DECLINED,
            "locations": {"type": "array", "items": {"type": "object"}},
            "webhooks": {"type": "object"},
            "lag": {"type": "object"},
        },
    },
}
