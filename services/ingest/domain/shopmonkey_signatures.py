"""Webhook signature verification, on the raw body, before anything is parsed (pure).

Standard Webhooks (reference/shopmonkey.md §1.2): `webhook-signature` holds space-separated
`v1,<base64 HMAC-SHA256>` entries over `"{webhook-id}.{webhook-timestamp}.{body}"`, keyed by the
base64 part of a `whsec_` secret; the timestamp must be within ±tolerance of now. A tenant may
hold several secrets (space-separated) while it rotates them; the sender may also sign with
several keys. The seed's `X-Shopmonkey-Signature` (hex HMAC-SHA256 of the body with the secret
as is) is accepted for tenants configured with `signature_scheme='legacy_hmac'`.

Headers are read defensively (they come from anybody): every header's length is bounded,
numbers must be ASCII digits (`str.isdigit` also takes "²", which `int` refuses), and texts
that go into the signed message must be ASCII. Whatever is wrong is an `Unauthorized` whose
reason is for the log; the caller gets one generic answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.base import HmacSha256
from services.ingest.errors import Unauthorized

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
STANDARD_SCHEME = "standard"
LEGACY_SCHEME = "legacy_hmac"
LEGACY_HEADER = "x-shopmonkey-signature"
MAX_SIGNATURE_ENTRIES = 16
#: Longest header values read (a v1 entry is ~48 characters; ids are short tokens).
MAX_ID_HEADER = 256
MAX_SIGNATURE_HEADER = 4096
MAX_TIMESTAMP_DIGITS = 12
MAX_LEGACY_HEADER = 128


def ascii_digits(text: str, max_digits: int) -> bool:
    """`text` is 1..max_digits ASCII digits (no sign, no space, no "²", no "١")."""
    return 0 < len(text) <= max_digits and text.isascii() and text.isdigit()


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret (`whsec_` prefix optional, padding lenient)."""
    raw = secret.strip()
    if raw.startswith(SECRET_PREFIX):
        raw = raw[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not base64 after its whsec_ prefix") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


@dataclass(frozen=True, slots=True)
class WebhookKeys:
    """What a tenant verifies with, decoded once (cheap per-request path)."""

    scheme: str
    keys: tuple[bytes, ...]
    macs: tuple[HmacSha256, ...] = field(default=(), init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "macs", tuple(HmacSha256(key) for key in self.keys))

    @classmethod
    def from_secret(cls, scheme: str, secret: str | None) -> WebhookKeys:
        """Parse a tenant's stored secret(s); an unusable secret yields no keys (all 401)."""
        if not secret or not secret.strip():
            return cls(scheme, ())
        if scheme == LEGACY_SCHEME:
            return cls(scheme, (secret.strip().encode(),))
        keys = []
        for part in secret.split():
            try:
                keys.append(decode_secret(part))
            except ValueError:
                continue
        return cls(STANDARD_SCHEME, tuple(keys))

    def __repr__(self) -> str:
        return f"WebhookKeys(scheme={self.scheme}, keys={len(self.keys)})"


def _candidates(header: str) -> list[bytes]:
    """Decoded `v1` signatures of the header; other versions and malformed entries skipped."""
    out: list[bytes] = []
    for entry in header.split()[:MAX_SIGNATURE_ENTRIES]:
        version, sep, value = entry.partition(",")
        if version != "v1" or not sep:
            continue
        try:
            out.append(binascii.a2b_base64(value, strict_mode=True))
        except (binascii.Error, ValueError):
            continue
    return out


def verify_standard(
    keys: WebhookKeys,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float,
    tolerance: int = 300,
) -> str:
    """Return the `webhook-id` of a genuine delivery, else raise `Unauthorized(reason)`.

    `headers` must be case-insensitive (aiohttp's CIMultiDict) or use lower-case names.
    """
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    header = headers.get("webhook-signature")
    if not (msg_id and stamp and header):
        raise Unauthorized("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not ascii_digits(stamp, MAX_TIMESTAMP_DIGITS):
        raise Unauthorized("invalid webhook-timestamp")
    if len(msg_id) > MAX_ID_HEADER or not msg_id.isascii():
        raise Unauthorized("invalid webhook-id")
    if len(header) > MAX_SIGNATURE_HEADER:
        raise Unauthorized("webhook-signature too long")
    timestamp = int(stamp)
    if timestamp < now - tolerance:
        raise Unauthorized("webhook-timestamp too old")
    if timestamp > now + tolerance:
        raise Unauthorized("webhook-timestamp too new")
    candidates = _candidates(header)
    if not candidates:
        raise Unauthorized("no v1 signature in webhook-signature")
    if not keys.keys:
        raise Unauthorized("no webhook secret configured for this tenant")
    prefix = f"{msg_id}.{stamp}.".encode()
    for mac in keys.macs:
        expected = mac.digest(prefix, body)
        # Check every candidate (no early exit on the first mismatch of length or value).
        if any(hmac.compare_digest(expected, c) for c in candidates):
            return msg_id
    raise Unauthorized("signature mismatch")


def verify_legacy(keys: WebhookKeys, headers: Mapping[str, str], body: bytes) -> None:
    """`X-Shopmonkey-Signature: <hex HMAC-SHA256(body)>` (`sha256=` prefix tolerated)."""
    provided = (headers.get(LEGACY_HEADER) or "").strip().lower()
    provided = provided.removeprefix("sha256=")
    if not provided:
        raise Unauthorized("missing X-Shopmonkey-Signature header")
    if len(provided) > MAX_LEGACY_HEADER or not provided.isascii():
        raise Unauthorized("invalid X-Shopmonkey-Signature header")
    if not keys.keys:
        raise Unauthorized("no webhook secret configured for this tenant")
    for mac in keys.macs:
        expected = mac.digest(body).hex()
        if hmac.compare_digest(expected.encode(), provided.encode()):
            return
    raise Unauthorized("signature mismatch")


def verify(
    keys: WebhookKeys, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: int
) -> None:
    """Verify with the tenant's configured scheme; the other scheme is never accepted."""
    if keys.scheme == LEGACY_SCHEME:
        verify_legacy(keys, headers, body)
    else:
        verify_standard(keys, headers, body, now=now, tolerance=tolerance)
