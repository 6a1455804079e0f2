"""Twilio webhooks with Twilio's own helpers: the `X-Twilio-Signature` check and TwiML answers.

The signature is HMAC-SHA1 of the public URL + sorted form parameters with the Auth Token,
checked by the official `twilio.request_validator.RequestValidator` (reference/messaging.md
§3.4); `twilio_refusal` returns None when the request is genuine, else the reason it is
refused. Answers are TwiML, built with the official `MessagingResponse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
#: HMAC-SHA1 in base64 is 28 characters.
MAX_SIGNATURE = 128


def twilio_url(seen_url: str, public_base: str | None) -> str:
    """The URL Twilio called: the configured public base (scheme, host, path prefix) + the
    path and query this process saw; the seen URL as is when no public base is configured."""
    if not public_base:
        return seen_url
    base = urlsplit(public_base.rstrip("/"))
    seen = urlsplit(seen_url)
    return urlunsplit((base.scheme, base.netloc, base.path + seen.path, seen.query, ""))


def twilio_refusal(
    auth_token: str, url: str, params: Mapping[str, Any], signature: str | None
) -> str | None:
    if not signature:
        return "missing X-Twilio-Signature"
    if len(signature) > MAX_SIGNATURE or not signature.isascii():
        return "invalid signature"
    if not RequestValidator(auth_token).validate(url, params, signature):
        return "invalid signature"
    return None


def twiml(message: str | None = None) -> str:
    """A TwiML answer: an empty <Response/>, or one <Message> (HELP)."""
    response = MessagingResponse()
    if message:
        response.message(message)
    return str(response)
