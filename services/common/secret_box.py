"""Secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`) under rotating keys.

`SECRETS_ENCRYPTION_KEYS` is a comma-separated list of Fernet keys: the first encrypts, every
one decrypts (`MultiFernet`), so a key is rotated by putting a new one first, running
`leadctl secrets rotate` (every stored secret re-encrypted under it), then dropping the old
one. What is stored is the Fernet token (text); a decrypted value is never logged, and an
undecryptable one raises `SecretUndecryptable` naming the variable, not the value.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from services.common.errors import LeadOrchestratorError

VARIABLE = "SECRETS_ENCRYPTION_KEYS"


class SecretUndecryptable(LeadOrchestratorError):
    """A stored secret is not a token of any configured key (wrong or missing key)."""


def parse_keys(raw: str) -> tuple[str, ...]:
    """The keys of a comma-separated list, each checked; raises ValueError naming the bad one
    by position (never by value)."""
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    if not keys:
        raise ValueError("at least one Fernet key is required (leadctl secrets new-key)")
    for n, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise ValueError(
                f"key {n} is not a Fernet key (32 url-safe base64-encoded bytes; "
                "`leadctl secrets new-key` makes one)"
            ) from None
    return keys


def new_key() -> str:
    """A fresh Fernet key."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts with the first key, decrypts with any."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("at least one key is required")
        self._fernet = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_setting(cls, raw: str) -> SecretBox:
        return cls(parse_keys(raw))

    def encrypt(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretUndecryptable(
                f"a stored secret does not decrypt with any key of {VARIABLE}"
            ) from None

    def rotate(self, token: str) -> str:
        """`token` re-encrypted under the first key (the value unchanged)."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretUndecryptable(
                f"a stored secret does not decrypt with any key of {VARIABLE}"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<keys>)"
