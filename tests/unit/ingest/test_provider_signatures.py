"""Signature checks against requests signed the way SendGrid and Twilio sign them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from services.ingest.adapters.sendgrid_webhook import SendGridVerifier
from services.ingest.adapters.twilio_webhook import twilio_refusal, twilio_url
from tests.support.provider_signing import SendGridSigner, twilio_signature

BODY = b'[{"email":"a@b.co","event":"delivered","sg_event_id":"e1","timestamp":1}]'


def now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def signer() -> SendGridSigner:
    return SendGridSigner.generate()


def test_genuine_sendgrid_batch_passes(signer: SendGridSigner) -> None:
    verifier = SendGridVerifier(signer.public_key, tolerance_seconds=600)
    ts = str(int(time.time()))
    assert verifier.refusal(BODY, signer.sign(BODY, ts), ts, now()) is None


def test_pem_wrapped_key_is_accepted(signer: SendGridSigner) -> None:
    pem = f"-----BEGIN PUBLIC KEY-----\n{signer.public_key}\n-----END PUBLIC KEY-----\n"
    ts = str(int(time.time()))
    assert (
        SendGridVerifier(pem, tolerance_seconds=600).refusal(BODY, signer.sign(BODY, ts), ts, now())
        is None
    )


def test_forged_altered_and_stale_sendgrid_batches_are_refused(signer: SendGridSigner) -> None:
    verifier = SendGridVerifier(signer.public_key, tolerance_seconds=600)
    ts = str(int(time.time()))
    forger = SendGridSigner.generate()
    assert verifier.refusal(BODY, forger.sign(BODY, ts), ts, now()) == "invalid signature"
    altered = BODY.replace(b"delivered", b"bounce")
    assert verifier.refusal(altered, signer.sign(BODY, ts), ts, now()) == "invalid signature"
    other_ts = str(int(ts) + 1)  # the timestamp is part of what is signed
    assert verifier.refusal(BODY, signer.sign(BODY, ts), other_ts, now()) == "invalid signature"
    old = str(int(time.time()) - 3600)
    assert verifier.refusal(BODY, signer.sign(BODY, old), old, now()) == "stale timestamp"
    assert verifier.refusal(BODY, None, ts, now()) == "missing signature headers"
    assert verifier.refusal(BODY, "%%%not-base64", ts, now()) == "invalid signature"
    assert verifier.refusal(BODY, "AAAA", ts, now()) == "invalid signature"
    assert verifier.refusal(BODY, signer.sign(BODY, ts), "yesterday", now()) == "invalid timestamp"


def test_a_bad_public_key_fails_at_start() -> None:
    with pytest.raises(ValueError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        SendGridVerifier("bm90IGEga2V5", tolerance_seconds=600)


def test_twilio_signature_over_the_public_url() -> None:
    token = "twilio-auth-token-123"
    public = "https://hooks.example.com/ingest/webhooks/twilio/inbound"
    params = {"MessageSid": "SM1", "From": "+12025550123", "Body": "STOP"}
    signature = twilio_signature(token, public, params)
    seen = "http://127.0.0.1:3000/webhooks/twilio/inbound"
    url = twilio_url(seen, "https://hooks.example.com/ingest")
    assert url == public
    assert twilio_refusal(token, url, params, signature) is None
    assert twilio_refusal(token, seen, params, signature) == "invalid signature"  # proxy URL
    assert twilio_refusal("other-token", url, params, signature) == "invalid signature"
    altered = {**params, "Body": "START"}
    assert twilio_refusal(token, url, altered, signature) == "invalid signature"
    assert twilio_refusal(token, url, params, None) == "missing X-Twilio-Signature"


def test_a_non_ecdsa_key_fails_at_start() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(ValueError, match="ECDSA"):
        SendGridVerifier(pem, tolerance_seconds=600)
