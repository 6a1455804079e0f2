"""Stored credentials of operators: argon2id hashes (argon2-cffi, its recommended parameters).

Only hashes are stored; the password or token is shown once when made and never logged.
`verify` costs tens of milliseconds on purpose (callers run it off the event loop), and
`verify_nothing` spends the same time when there is no account, so a refused sign-in takes as
long for an unknown email as for a wrong password.
"""

from __future__ import annotations

import contextlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_HASHER = PasswordHasher()
_NOBODY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify(stored: str | None, secret: str) -> bool:
    """Whether `secret` matches the stored hash (False for none or a malformed one)."""
    if not stored:
        verify_nothing(secret)
        return False
    try:
        return _HASHER.verify(stored, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def verify_nothing(secret: str) -> None:
    """Spend what a verification costs, for a caller without an account."""
    with contextlib.suppress(VerifyMismatchError, VerificationError, InvalidHashError):
        _HASHER.verify(_NOBODY, secret)


def new_password() -> str:
    """A generated password: 20 url-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)
