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
from dataclasses import dataclass
from typing import Any

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
