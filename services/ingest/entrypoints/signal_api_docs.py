"""OpenAPI fragments of the provider-webhook, lead API and unsubscribe routes (each route module
exports its own as `OPENAPI_PATHS`, see `entrypoints.openapi`)."""

from __future__ import annotations

from typing import Any

from services.ingest.adapters.sendgrid_webhook import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
)
from services.ingest.service_layer.contact_signals import CHAT_KINDS


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignalsError"}}},
    }


_FORM = {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}}
_TWIML = {"description": "TwiML", "content": {"application/xml": {"schema": {"type": "string"}}}}
_TWILIO_SIG = {
    "name": "X-Twilio-Signature",
    "in": "header",
    "required": True,
    "schema": {"type": "string"},
    "description": "HMAC-SHA1 (Auth Token) of the public URL + sorted form parameters",
}
_TENANT_ID = {"name": "tenantId", "in": "path", "required": True, "schema": {"type": "string"}}
_HTML_BODY = {"content": {"text/html": {"schema": {"type": "string"}}}}
_HTML = {"description": "HTML page", **_HTML_BODY}
_LEAD_ID = {"name": "leadId", "in": "path", "required": True, "schema": {"type": "string"}}
_BEARER = {
    "name": "Authorization",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "`Bearer <the location's lead API token>`",
}
_THROTTLED = {
    "description": "Too many failed authentications from this address; retry after Retry-After",
    "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/SignalsError"}}},
}

SIGNAL_COMPONENTS: dict[str, Any] = {
    "SignalsError": {
        "type": "object",
        "required": ["success", "reason"],
        "properties": {"success": {"const": False}, "reason": {"type": "string"}},
    }
}

PROVIDER_WEBHOOK_PATHS: dict[str, Any] = {
    "/webhooks/sendgrid/events": {
        "post": {
            "summary": "SendGrid Signed Event Webhook",
            "description": (
                "A JSON array of SendGrid events, verified with the ECDSA public key "
                "(SENDGRID_WEBHOOK_PUBLIC_KEY) over timestamp + raw body. Events carrying our "
                "custom_args (command_id, lead_id, tenant_id) become ContactSignals; bounces, "
                "spam reports and unsubscribes suppress the address before the answer. "
                "Duplicates (same sg_event_id) are harmless."
            ),
            "parameters": [
                {
                    "name": SENDGRID_SIGNATURE_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
                {
                    "name": SENDGRID_TIMESTAMP_HEADER,
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
                },
            },
            "responses": {
                "200": {"description": "Processed; signals acknowledged by Kafka"},
                "400": _error("Not a JSON array of events"),
                "401": _error("Missing, forged, altered or stale signature, or no key configured"),
                "429": _THROTTLED,
                "503": _error("Kafka/PostgreSQL unavailable; retry"),
            },
        }
    },
    "/webhooks/twilio/status": {
        "post": {
            "summary": "Twilio message status callback",
            "description": (
                "MessageStatus/ErrorCode → the touch point's delivery status in job_executions "
                "and delivered/undelivered/failed signals."
            ),
            "parameters": [_TWILIO_SIG],
            "requestBody": {"required": True, "content": _FORM},
            "responses": {
                "200": _TWIML,
                "400": _error("MessageSid or MessageStatus missing"),
                "401": _error("Missing or invalid signature, or no Auth Token configured"),
                "429": _THROTTLED,
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
    "/webhooks/twilio/inbound": {
        "post": {
            "summary": "Twilio inbound SMS",
            "description": (
                "STOP, STOPALL, UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT → suppression "
                "(before the answer) and opted_out; START, UNSTOP, YES → opted back in; HELP, "
                "INFO → help text; anything else → replied."
            ),
            "parameters": [_TWILIO_SIG],
            "requestBody": {"required": True, "content": _FORM},
            "responses": {
                "200": _TWIML,
                "400": _error("MessageSid missing"),
                "401": _error("Missing or invalid signature, or no Auth Token configured"),
                "429": _THROTTLED,
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
}

_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "description": "The signed link's token (LINK_SIGNING_KEYS): tenant, lead, channel, address.",
    "schema": {"type": "string"},
}
_INVALID = {"description": "No, an altered or a foreign token: nothing changed", **_HTML_BODY}
_GONE = {"description": "The old unsigned link: nothing changed", **_HTML_BODY}

UNSUBSCRIBE_PATHS: dict[str, Any] = {
    "/u/{token}": {
        "get": {
            "summary": "Unsubscribe page of a signed link (a button; GET changes nothing)",
            "description": "Says what an unsubscribe stops (UNSUBSCRIBE_SCOPE).",
            "parameters": [_TOKEN],
            "responses": {"200": _HTML, "400": _INVALID, "503": _error("PostgreSQL unavailable")},
        },
        "post": {
            "summary": "Unsubscribe (the page's button, or RFC 8058 one-click)",
            "description": (
                "Suppresses the address the link was sent to (before the answer), at the "
                "link's location (its company's locations) or every location "
                "(UNSUBSCRIBE_SCOPE), and emits an unsubscribed signal."
            ),
            "parameters": [_TOKEN],
            "requestBody": {"required": False, "content": _FORM},
            "responses": {
                "200": _HTML,
                "400": _INVALID,
                "404": {
                    "description": "The lead has no such address: nothing changed",
                    **_HTML_BODY,
                },
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        },
    },
    "/u/": {
        "get": {"summary": "A link without its token", "responses": {"400": _INVALID}},
        "post": {"summary": "A link without its token", "responses": {"400": _INVALID}},
    },
    "/unsubscribe/{tenantId}/{leadId}": {
        "get": {
            "summary": "The old unsigned unsubscribe link: 410 Gone",
            "parameters": [_TENANT_ID, _LEAD_ID],
            "responses": {"410": _GONE},
        },
        "post": {
            "summary": "The old unsigned unsubscribe link: 410 Gone, nothing changed",
            "parameters": [_TENANT_ID, _LEAD_ID],
            "responses": {"410": _GONE},
        },
    },
}

#: The lead API takes `Authorization: Bearer <the tenant's lead API token>`.
LEAD_API_PATHS: dict[str, Any] = {
    "/api/leads/{leadId}": {
        "get": {
            "summary": "A lead for the chat service (Authorization: Bearer <lead API token>)",
            "description": (
                "First name, vehicle, services of interest, lifecycle state, the location with "
                "its hours and services, and the touch history. Another tenant's lead is 404."
            ),
            "parameters": [_LEAD_ID, _BEARER],
            "responses": {
                "200": {
                    "description": "The lead",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": _error("Missing or invalid bearer token"),
                "429": _THROTTLED,
                "404": _error("No such lead for this tenant"),
                "503": _error("PostgreSQL unavailable"),
            },
        }
    },
    "/api/leads/{leadId}/signals": {
        "post": {
            "summary": "Report a chat/operator signal (Authorization: Bearer <lead API token>)",
            "parameters": [_LEAD_ID, _BEARER],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["kind"],
                            "properties": {
                                "kind": {
                                    "enum": sorted(k.value for k in CHAT_KINDS),
                                },
                                "eventId": {
                                    "type": "string",
                                    "description": "Idempotency id: same id, same signal_id",
                                },
                                "occurredAt": {"type": "string", "format": "date-time"},
                                "detail": {"type": "string", "maxLength": 200},
                            },
                        }
                    }
                },
            },
            "responses": {
                "202": {"description": "Signal acknowledged by Kafka"},
                "400": _error("Invalid body or kind"),
                "401": _error("Missing or invalid bearer token"),
                "429": _THROTTLED,
                "404": _error("No such lead for this tenant"),
                "503": _error("Kafka/PostgreSQL unavailable"),
            },
        }
    },
}
