"""Signed tokens (pure): links in messages and operator sessions, HMAC-SHA256 under rotating keys.

`LINK_SIGNING_KEYS` is a comma-separated list of secrets: the first signs, every one verifies,
so a key is rotated by putting a new one first and dropping the old one once nothing signed
with it matters (for unsubscribe links: CAN-SPAM wants them to work 30 days after sending).
Each use signs under its own purpose label, so a token of one use is never valid for another.

A token is url-safe base64 (no padding) of `payload || mac`, `mac` the first 16 bytes of
HMAC-SHA256(key, purpose || payload). Nothing in a token is secret; nothing in it can be
changed without the key.

The unsubscribe link binds tenant, lead, channel and contact: version (1) | tenant (16) |
lead (16) | channel (1) | the first 8 bytes of SHA-256 of the normalised contact (8), so the
address itself is never in the URL (nor in any access log), and a link only ever unsubscribes
the address it was sent to.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from schemas.base import Channel

VARIABLE = "LINK_SIGNING_KEYS"
#: Shortest accepted signing key (characters): HMAC-SHA256 wants at least 32 bytes of key.
MIN_KEY_CHARS = 32
MAC_BYTES = 16
UNSUBSCRIBE = b"unsubscribe-link/v1"
OPERATOR_SESSION = b"operator-session/v1"
_CHANNELS = (Channel.EMAIL, Channel.SMS)
_UNSUBSCRIBE_VERSION = 1
_UNSUBSCRIBE_BYTES = 1 + 16 + 16 + 1 + 8
#: Longest token `verify` looks at (a session or an unsubscribe link is far shorter).
MAX_TOKEN_CHARS = 256


def parse_signing_keys(raw: str) -> tuple[bytes, ...]:
    """The keys of a comma-separated list; raises ValueError naming a bad one by position."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        raise ValueError("at least one key is required (e.g. `openssl rand -hex 32`)")
    for n, key in enumerate(keys, start=1):
        if len(key) < MIN_KEY_CHARS:
            raise ValueError(f"key {n} is shorter than {MIN_KEY_CHARS} characters")
    return tuple(k.encode() for k in keys)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    if not text or len(text) > MAX_TOKEN_CHARS or not text.isascii():
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if _b64(raw) == text else None  # one spelling per token (no spare bits)


class Signer:
    """Signs under the first key and verifies under any, for one purpose."""

    def __init__(self, keys: Sequence[bytes], purpose: bytes) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._keys = tuple(keys)
        self._purpose = purpose

    def _mac(self, key: bytes, payload: bytes) -> bytes:
        return hmac.digest(key, self._purpose + payload, "sha256")[:MAC_BYTES]

    def sign(self, payload: bytes) -> str:
        return _b64(payload + self._mac(self._keys[0], payload))

    def verify(self, token: str) -> bytes | None:
        """The payload of a token one of the keys signed for this purpose; None otherwise."""
        raw = _unb64(token)
        if raw is None or len(raw) <= MAC_BYTES:
            return None
        payload, mac = raw[:-MAC_BYTES], raw[-MAC_BYTES:]
        ok = False
        for key in self._keys:  # every key, so timing says nothing about which one matched
            ok |= hmac.compare_digest(self._mac(key, payload), mac)
        return payload if ok else None

    def __repr__(self) -> str:
        return f"Signer({self._purpose.decode()}, {len(self._keys)} keys)"


def contact_digest(contact: str) -> bytes:
    """What an unsubscribe link says about its address: 8 bytes of SHA-256 of it, normalised
    (trimmed, lower-cased)."""
    return hashlib.sha256(contact.strip().lower().encode()).digest()[:8]


@dataclass(frozen=True, slots=True)
class UnsubscribeClaim:
    """What a valid unsubscribe link names: the lead of a tenant, a channel, an address."""

    tenant_id: uuid.UUID
    lead_id: uuid.UUID
    channel: Channel
    contact: bytes  # `contact_digest` of the address the message went to

    def matches(self, address: str) -> bool:
        return hmac.compare_digest(contact_digest(address), self.contact)


def unsubscribe_token(
    signer: Signer, *, tenant_id: uuid.UUID, lead_id: uuid.UUID, channel: Channel, contact: str
) -> str:
    payload = (
        bytes([_UNSUBSCRIBE_VERSION])
        + tenant_id.bytes
        + lead_id.bytes
        + bytes([_CHANNELS.index(channel)])
        + contact_digest(contact)
    )
    return signer.sign(payload)


def read_unsubscribe_token(signer: Signer, token: str) -> UnsubscribeClaim | None:
    """The claim of a link `signer`'s keys signed; None for a missing, altered, truncated or
    foreign one (another deployment's key, another purpose)."""
    payload = signer.verify(token)
    if payload is None or len(payload) != _UNSUBSCRIBE_BYTES:
        return None
    if payload[0] != _UNSUBSCRIBE_VERSION or payload[33] >= len(_CHANNELS):
        return None
    return UnsubscribeClaim(
        tenant_id=uuid.UUID(bytes=payload[1:17]),
        lead_id=uuid.UUID(bytes=payload[17:33]),
        channel=_CHANNELS[payload[33]],
        contact=payload[34:42],
    )
