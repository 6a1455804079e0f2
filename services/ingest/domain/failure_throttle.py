"""Unauthenticated failures rate-limited per client address (pure; time passed in).

Each address may fail authentication `burst` times at once, refilled at `rate` a second; an
address without a failure left is refused before its request costs anything (429 with
`Retry-After`), whether or not that request would authenticate. Memory is bounded: at most
`max_clients` addresses are tracked (least recently failed dropped first), and an address
whose budget is full again is forgotten. Callers that never fail cost one attribute read.
"""

from __future__ import annotations

import math
from collections import OrderedDict


class FailureThrottle:
    def __init__(self, *, rate: float, burst: int, max_clients: int) -> None:
        if rate <= 0 or burst < 1 or max_clients < 1:
            raise ValueError("rate must be > 0, burst and max_clients >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        #: address → (failures left, when counted)
        self._left: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._left)

    @property
    def active(self) -> bool:
        """Some address has failed recently (else no request needs its address looked at)."""
        return bool(self._left)

    def _refilled(self, client: str, now: float) -> float | None:
        entry = self._left.get(client)
        if entry is None:
            return None
        left, at = entry
        left = min(self.burst, left + max(0.0, now - at) * self.rate)
        if left >= self.burst:
            del self._left[client]  # as good as new: nothing to remember
            return None
        return left

    def retry_after(self, client: str, now: float) -> int | None:
        """Whole seconds until `client` may be heard again; None when it may now."""
        left = self._refilled(client, now)
        if left is None or left >= 1.0:
            return None
        return max(1, math.ceil((1.0 - left) / self.rate))

    def failed(self, client: str, now: float) -> None:
        """Count one unauthenticated failure of `client`."""
        left = self._refilled(client, now)
        self._left[client] = (max(0.0, (self.burst if left is None else left) - 1.0), now)
        self._left.move_to_end(client)
        while len(self._left) > self.max_clients:
            self._left.popitem(last=False)
