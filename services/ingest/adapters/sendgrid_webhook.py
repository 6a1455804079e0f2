"""SendGrid Signed Event Webhook verification with SendGrid's own helper.

ECDSA over `timestamp + raw body`, checked by the official
`sendgrid.helpers.eventwebhook.EventWebhook` (reference/messaging.md §2.4); a timestamp further
than the tolerance from now is refused as stale (SendGrid publishes no limit; we choose one).
`refusal` returns None when the request is genuine, else the reason it is refused (for the
log: callers answer one generic 401). Header values are bounded and the timestamp must be
ASCII digits before anything is decoded.
"""

from __future__ import annotations

import binascii
from datetime import datetime

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from services.ingest.domain.shopmonkey_signatures import MAX_TIMESTAMP_DIGITS, ascii_digits

SENDGRID_SIGNATURE_HEADER: str = EventWebhookHeader.SIGNATURE
SENDGRID_TIMESTAMP_HEADER: str = EventWebhookHeader.TIMESTAMP
#: A DER ECDSA P-256 signature is ~72 bytes, ~96 in base64.
MAX_SIGNATURE = 512


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
        if not ascii_digits(timestamp, MAX_TIMESTAMP_DIGITS):
            return "invalid timestamp"
        if len(signature) > MAX_SIGNATURE or not signature.isascii():
            return "invalid signature"
        sent_at = int(timestamp)
        if abs(now.timestamp() - sent_at) > self._tolerance:
            return "stale timestamp"
        try:
            text = payload.decode("utf-8")
            valid = self._helper.verify_signature(text, signature, timestamp)
        except (UnicodeDecodeError, binascii.Error, ValueError):
            return "invalid signature"
        return None if valid else "invalid signature"
