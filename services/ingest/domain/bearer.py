"""`Authorization: Bearer <token>` read defensively (website keys, lead API tokens): a token is
1..256 printable ASCII characters, anything else is no token (never a look-up, never a hash
of a string that cannot be encoded)."""

from __future__ import annotations

MAX_TOKEN = 256


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN:
        return None
    if not (token.isascii() and token.isprintable()):
        return None
    return token
