"""Verification of provider webhook signatures with the providers' own helpers (pure).

- SendGrid Signed Event Webhook: ECDSA over `timestamp + raw body`, checked by the official
  `sendgrid.helpers.eventwebhook.EventWebhook` (reference/messaging.md §2.4); a timestamp further
  than the tolerance from now is refused as stale (SendGrid publishes no limit; we choose one).
- Twilio `X-Twilio-Signature`: HMAC-SHA1 of the public URL + sorted form parameters with the
  Auth Token, checked by the official `twilio.request_validator.RequestValidator` (§3.4).

Each check returns None when the request is genuine, else the reason it is refused.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader
from twilio.request_validator import RequestValidator

SENDGRID_SIGNATURE_HEADER: str = EventWebhookHeader.SIGNATURE
SENDGRID_TIMESTAMP_HEADER: str = EventWebhookHeader.TIMESTAMP
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"


class SendGridVerifier:
    """Checks signed SendGrid event batches against one public key."""

    def __init__(self, public_key: str, *, tolerance_seconds: int) -> None:
        body = "".join(
            line.strip()
            for line in public_key.strip().splitlines()
            if line.strip() and not line.startswith("-----")
        )
        try:
            self._helper = EventWebhook(body)
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise ValueError(
                f"SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA public key: {exc}"
            ) from None
        if not isinstance(self._helper.public_key, ec.EllipticCurvePublicKey):
            raise ValueError("SENDGRID_WEBHOOK_PUBLIC_KEY is not an ECDSA (elliptic curve) key")
        self._tolerance = tolerance_seconds

    def refusal(
        self, payload: bytes, signature: str | None, timestamp: str | None, now: datetime
    ) -> str | None:
        if not signature or not timestamp:
            return "missing signature headers"
        try:
            sent_at = int(timestamp.strip())
        except ValueError:
            return "invalid timestamp"
        if abs(now.timestamp() - sent_at) > self._tolerance:
            return "stale timestamp"
        try:
            text = payload.decode("utf-8")
            valid = self._helper.verify_signature(text, signature, timestamp)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            return "invalid signature"
        return None if valid else "invalid signature"


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
    if not RequestValidator(auth_token).validate(url, params, signature):
        return "invalid signature"
    return None
