"""The webhook verifier against the Standard Webhooks specification's published test vector
(standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py) and the
seed's legacy hex scheme."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakes.shopmonkey.webhooks import standard_signature
from services.ingest.domain.shopmonkey_signatures import (
    LEGACY_SCHEME,
    STANDARD_SCHEME,
    WebhookKeys,
    verify,
    verify_legacy,
    verify_standard,
)
from services.ingest.errors import Unauthorized

# The specification's vector.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
WRONG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="  # the spec's "invalid" one
OTHER_SECRET = "whsec_" + base64.b64encode(b"another key used during rotation!!").decode()


def headers(signature: str = SIGNATURE, *, ts: int = TIMESTAMP, msg_id: str = MSG_ID) -> dict:
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def keys(*secrets: str) -> WebhookKeys:
    return WebhookKeys.from_secret(STANDARD_SCHEME, " ".join(secrets))


def test_signer_reproduces_the_published_vector() -> None:
    assert standard_signature(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE


@pytest.mark.parametrize("secret", [SECRET, SECRET.removeprefix("whsec_")])
def test_published_vector_verifies_with_and_without_prefix(secret: str) -> None:
    assert verify_standard(keys(secret), headers(), BODY, now=TIMESTAMP + 10) == MSG_ID


@pytest.mark.parametrize(
    ("hdrs", "body", "reason"),
    [
        (headers(WRONG), BODY, "signature mismatch"),
        (headers(), b'{"test": 2432232315}', "signature mismatch"),
        (headers(msg_id="msg_other"), BODY, "signature mismatch"),
        (headers("v2," + SIGNATURE[3:]), BODY, "no v1 signature"),
        (headers("v1"), BODY, "no v1 signature"),
        (headers("v1,not base64!!"), BODY, "no v1 signature"),
        ({"webhook-id": MSG_ID, "webhook-timestamp": str(TIMESTAMP)}, BODY, "missing"),
        ({"webhook-id": MSG_ID, "webhook-signature": SIGNATURE}, BODY, "missing"),
        ({"webhook-timestamp": str(TIMESTAMP), "webhook-signature": SIGNATURE}, BODY, "missing"),
        ({**headers(), "webhook-timestamp": "hello"}, BODY, "invalid webhook-timestamp"),
        ({**headers(), "webhook-timestamp": "-1614265330"}, BODY, "invalid webhook-timestamp"),
    ],
)
def test_forged_or_incomplete_deliveries_are_refused(hdrs: dict, body: bytes, reason: str) -> None:
    with pytest.raises(Unauthorized, match=reason):
        verify_standard(keys(SECRET), hdrs, body, now=TIMESTAMP)


def test_body_is_verified_as_raw_bytes_not_reserialised_json() -> None:
    compact = b'{"test":2432232314}'  # same JSON, other bytes
    with pytest.raises(Unauthorized):
        verify_standard(keys(SECRET), headers(), compact, now=TIMESTAMP)


def test_several_signatures_one_valid_is_accepted() -> None:
    # The spec's multi-signature case: other versions and stale keys around the valid one.
    sigs = [
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
        SIGNATURE,
        "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
    ]
    assert verify_standard(keys(SECRET), headers(" ".join(sigs)), BODY, now=TIMESTAMP) == MSG_ID


def test_key_rotation_sender_signs_with_old_and_new_key() -> None:
    new = standard_signature(OTHER_SECRET, MSG_ID, TIMESTAMP, BODY)
    both = headers(f"{SIGNATURE} {new}")
    # Receiver still on the old secret, or already on the new one: both accept.
    assert verify_standard(keys(SECRET), both, BODY, now=TIMESTAMP) == MSG_ID
    assert verify_standard(keys(OTHER_SECRET), both, BODY, now=TIMESTAMP) == MSG_ID


def test_key_rotation_receiver_holds_old_and_new_secret() -> None:
    rotating = keys(OTHER_SECRET, SECRET)
    assert verify_standard(rotating, headers(), BODY, now=TIMESTAMP) == MSG_ID
    new = standard_signature(OTHER_SECRET, MSG_ID, TIMESTAMP, BODY)
    assert verify_standard(rotating, headers(new), BODY, now=TIMESTAMP) == MSG_ID
    with pytest.raises(Unauthorized):  # after rotation the old key alone no longer works
        verify_standard(keys(OTHER_SECRET), headers(), BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("offset", "reason"),
    [(-301, "too old"), (301, "too new"), (-3600, "too old"), (86400, "too new")],
)
def test_stale_and_future_timestamps_are_refused(offset: int, reason: str) -> None:
    # Signed correctly for that timestamp: only the clock makes it invalid (replay defence).
    ts = TIMESTAMP + offset
    sig = standard_signature(SECRET, MSG_ID, ts, BODY)
    with pytest.raises(Unauthorized, match=reason):
        verify_standard(keys(SECRET), headers(sig, ts=ts), BODY, now=TIMESTAMP)


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_timestamps_within_five_minutes_are_accepted(offset: int) -> None:
    ts = TIMESTAMP + offset
    sig = standard_signature(SECRET, MSG_ID, ts, BODY)
    assert verify_standard(keys(SECRET), headers(sig, ts=ts), BODY, now=TIMESTAMP) == MSG_ID


def test_tenant_without_usable_secret_refuses_everything() -> None:
    with pytest.raises(Unauthorized, match="no webhook secret"):
        verify_standard(keys(), headers(), BODY, now=TIMESTAMP)
    with pytest.raises(Unauthorized, match="no webhook secret"):
        verify_standard(keys("whsec_***not-base64***"), headers(), BODY, now=TIMESTAMP)


def test_keys_repr_hides_secrets() -> None:
    assert "MfKQ" not in repr(keys(SECRET)) and "keys=1" in repr(keys(SECRET))


# legacy X-Shopmonkey-Signature -----------------------------------------------------------------
LEGACY_SECRET = "seed-shared-secret"


def legacy(body: bytes, secret: str = LEGACY_SECRET) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.mark.parametrize("transform", [str, str.upper, lambda s: "sha256=" + s])
def test_legacy_hex_signature_is_accepted(transform) -> None:  # type: ignore[no-untyped-def]
    k = WebhookKeys.from_secret(LEGACY_SCHEME, LEGACY_SECRET)
    verify_legacy(k, {"x-shopmonkey-signature": transform(legacy(BODY))}, BODY)


@pytest.mark.parametrize(
    "hdrs",
    [
        {},
        {"x-shopmonkey-signature": ""},
        {"x-shopmonkey-signature": legacy(BODY, "other-secret")},
        {"x-shopmonkey-signature": legacy(BODY + b" ")},
        {"x-shopmonkey-signature": "zz" * 32},
    ],
)
def test_legacy_forgeries_are_refused(hdrs: dict) -> None:
    k = WebhookKeys.from_secret(LEGACY_SCHEME, LEGACY_SECRET)
    with pytest.raises(Unauthorized):
        verify_legacy(k, hdrs, BODY)


def test_each_tenant_accepts_only_its_configured_scheme() -> None:
    standard = WebhookKeys.from_secret(STANDARD_SCHEME, SECRET)
    legacy_keys = WebhookKeys.from_secret(LEGACY_SCHEME, SECRET)
    both = {**headers(), "x-shopmonkey-signature": legacy(BODY, SECRET)}
    verify(standard, headers(), BODY, now=TIMESTAMP, tolerance=300)
    verify(legacy_keys, both, BODY, now=TIMESTAMP, tolerance=300)
    with pytest.raises(Unauthorized):  # a legacy tenant does not take Standard headers alone
        verify(legacy_keys, headers(), BODY, now=TIMESTAMP, tolerance=300)
    with pytest.raises(Unauthorized):  # a standard tenant does not take the hex header alone
        verify(
            standard,
            {"x-shopmonkey-signature": legacy(BODY, SECRET)},
            BODY,
            now=TIMESTAMP,
            tolerance=300,
        )


@given(st.binary(max_size=200), st.lists(st.binary(max_size=300), max_size=3))
def test_precomputed_pads_give_the_hmac_of_the_standard_library(
    key: bytes, parts: list[bytes]
) -> None:
    """Keys shorter, equal to and longer than SHA-256's 64-byte block, any message split."""
    from schemas.base import HmacSha256

    expected = hmac.new(key, b"".join(parts), hashlib.sha256).digest()
    assert HmacSha256(key).digest(*parts) == expected
