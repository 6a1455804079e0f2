"""Operators' sessions and failed sign-ins, as the admin listener keeps them (pure; the accounts
themselves are `services.common.domain.operators.Operator`).

- Sessions: a signed token (services.common.domain.signed_links, purpose `operator-session`)
  of version (1) | operator id (16) | session epoch (4) | expiry, unix seconds (8). A session
  is valid until it expires or the account's epoch moves on (reset, disable).
- `FailureWindow`: failures per key within a sliding window; a key at its limit is refused
  until its oldest failure leaves the window. Bounded: the least recently failed keys go first.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass

from services.common.domain.operators import Operator
from services.common.domain.signed_links import Signer

_SESSION_VERSION = 1
_SESSION_BYTES = 1 + 16 + 4 + 8


@dataclass(frozen=True, slots=True)
class SessionClaim:
    operator_id: uuid.UUID
    epoch: int
    expires: int


def session_token(signer: Signer, operator: Operator, *, expires: int) -> str:
    payload = (
        bytes([_SESSION_VERSION])
        + operator.id.bytes
        + operator.session_epoch.to_bytes(4, "big")
        + expires.to_bytes(8, "big")
    )
    return signer.sign(payload)


def read_session(signer: Signer, token: str, *, now: float) -> SessionClaim | None:
    """The claim of an unexpired session `signer` signed; None otherwise."""
    payload = signer.verify(token)
    if payload is None or len(payload) != _SESSION_BYTES or payload[0] != _SESSION_VERSION:
        return None
    claim = SessionClaim(
        operator_id=uuid.UUID(bytes=payload[1:17]),
        epoch=int.from_bytes(payload[17:21], "big"),
        expires=int.from_bytes(payload[21:29], "big"),
    )
    return claim if claim.expires > now else None


class FailureWindow:
    """At most `limit` failures per key within `window` seconds."""

    def __init__(self, *, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float] | None:
        stamps = self._failures.get(key)
        if stamps is None:
            return None
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        if not stamps:
            del self._failures[key]
            return None
        return stamps

    def retry_after(self, key: str, now: float) -> float | None:
        """Seconds until `key` may try again (None: it may now)."""
        stamps = self._recent(key, now)
        if stamps is None or len(stamps) < self.limit:
            return None
        return max(0.0, stamps[0] + self.window - now)

    def count(self, key: str, now: float) -> int:
        stamps = self._recent(key, now)
        return len(stamps) if stamps is not None else 0

    def fail(self, key: str, now: float) -> None:
        stamps = self._failures.setdefault(key, deque())
        stamps.append(now)
        while len(stamps) > self.limit:
            stamps.popleft()
        self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def clear(self, key: str) -> None:
        self._failures.pop(key, None)
