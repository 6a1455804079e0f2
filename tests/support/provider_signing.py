"""Sign webhook requests the way the providers do, for tests.

SendGrid: an ECDSA P-256 key pair generated here; the signature is base64 of the DER ECDSA
signature (SHA-256) over `timestamp + raw body` (reference/messaging.md §2.4), the public key
is handed to the app as SendGrid shows it: the base64 body of the PEM.
Twilio: `RequestValidator.compute_signature(url, params)` of the official library.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twilio.request_validator import RequestValidator

SG_SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
SG_TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@dataclass
class SendGridSigner:
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> SendGridSigner:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def public_key(self) -> str:
        pem = (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        return "".join(line for line in pem.splitlines() if not line.startswith("-----"))

    def sign(self, body: bytes, timestamp: str) -> str:
        signature = self.private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return base64.b64encode(signature).decode()

    def headers(self, body: bytes, *, at: float | None = None) -> dict[str, str]:
        timestamp = str(int(at if at is not None else time.time()))
        return {
            SG_SIGNATURE: self.sign(body, timestamp),
            SG_TIMESTAMP: timestamp,
            "Content-Type": "application/json",
        }


def sendgrid_body(events: list[dict[str, Any]]) -> bytes:
    return json.dumps(events).encode()


def twilio_signature(token: str, url: str, params: dict[str, str]) -> str:
    return str(RequestValidator(token).compute_signature(url, params))


@dataclass
class Callers:
    """The credentials every genuine caller of ingest's public routes presents: Shopmonkey's
    Standard Webhooks signature, the website key, the lead API token, SendGrid's and Twilio's
    signatures (over the URL on `port`)."""

    port: int
    webhook_secret: str
    website_key: str
    lead_token: str
    sendgrid: SendGridSigner
    twilio_token: str

    def headers(self, path: str, body: bytes) -> list[tuple[bytes, bytes]]:
        """What a genuine caller of `path` sends with `body` (raw header pairs)."""
        if path.startswith("/webhooks/shopmonkey/"):
            from fakes.shopmonkey.webhooks import standard_signature

            stamp, msg = int(time.time()), f"msg_{uuid.uuid4().hex}"
            signature = standard_signature(self.webhook_secret, msg, stamp, body)
            return [
                (b"webhook-id", msg.encode()),
                (b"webhook-timestamp", str(stamp).encode()),
                (b"webhook-signature", signature.encode()),
                (b"Content-Type", b"application/json"),
            ]
        if path.startswith("/api/leads"):
            token = self.website_key if path == "/api/leads" else self.lead_token
            return [(b"Authorization", f"Bearer {token}".encode()), (b"Content-Type", _JSON)]
        if path == "/webhooks/sendgrid/events":
            return [(k.encode(), v.encode()) for k, v in self.sendgrid.headers(body).items()]
        if path.startswith("/webhooks/twilio/"):
            try:
                params = dict(parse_qsl(body.decode(), keep_blank_values=True))
            except UnicodeDecodeError:
                params = {}
            url = f"http://127.0.0.1:{self.port}{path}"
            return [
                (b"X-Twilio-Signature", twilio_signature(self.twilio_token, url, params).encode()),
                (b"Content-Type", b"application/x-www-form-urlencoded"),
            ]
        return []


_JSON = b"application/json"
