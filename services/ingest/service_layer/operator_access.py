"""Who is asking on the admin listener: operator sign-in, sessions and API tokens.

- `sign_in`: email and password checked against the account's argon2 hash (as slowly for an
  unknown email); a wrong one is one failure for the account and one for the client address,
  and either over its limit within the window is refused with 429 before any hash is checked.
  Every refusal is logged with the masked email and the address, never the password.
- `session`: a signed session cookie (`domain.operators`), valid until it expires or the
  account's epoch moves on (reset, disable) or the account is disabled.
- `bearer`: an API token (`lop_<id>_<secret>`), checked against the account's token hash once
  and then remembered for `TOKEN_MEMORY` seconds; failures count against the address.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.common.domain.operators import Operator, token_operator
from services.common.domain.signed_links import Signer
from services.common.masking import mask_email
from services.ingest.domain.operators import FailureWindow, read_session, session_token
from services.ingest.errors import SignInRefused, TooManyAttempts
from services.ingest.ports import CredentialCheck, OperatorStore

log = logging.getLogger(__name__)
#: A verified API token is trusted this long without checking its hash again.
TOKEN_MEMORY = 60.0
#: Longest email and password looked at (argon2 of a megabyte is a denial of service).
MAX_EMAIL, MAX_PASSWORD = 320, 200


@dataclass(frozen=True, slots=True)
class SignInLimits:
    per_account: int = 5
    per_address: int = 20
    window_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class Session:
    operator: Operator
    token: str
    max_age: int


class OperatorAccess:
    def __init__(
        self,
        *,
        store: OperatorStore,
        credentials: CredentialCheck,
        signer: Signer,
        session_seconds: float,
        limits: SignInLimits,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._credentials = credentials
        self._signer = signer
        self._session_seconds = int(session_seconds)
        self._accounts = FailureWindow(limit=limits.per_account, window=limits.window_seconds)
        self._addresses = FailureWindow(limit=limits.per_address, window=limits.window_seconds)
        self._clock = clock
        self._tokens: dict[bytes, tuple[float, int]] = {}

    def _throttled(self, account: str | None, address: str) -> None:
        now = self._clock()
        waits = [self._addresses.retry_after(address, now)]
        if account is not None:
            waits.append(self._accounts.retry_after(account, now))
        wait = max((w for w in waits if w is not None), default=None)
        if wait is not None:
            log.warning(
                "operator sign-in refused (too many failures) for %s from %s",
                mask_email(account) if account else "<token>",
                address,
            )
            raise TooManyAttempts("too many failed sign-ins: try again later", wait)

    def _failed(self, account: str | None, address: str) -> None:
        now = self._clock()
        self._addresses.fail(address, now)
        if account is not None:
            self._accounts.fail(account, now)
        log.warning(
            "operator sign-in failed for %s from %s (%d recent failures from this address)",
            mask_email(account) if account else "<token>",
            address,
            self._addresses.count(address, now),
        )

    async def sign_in(self, email: str, password: str, *, address: str) -> Session:
        """A new session, or SignInRefused (the same for an unknown email as for a wrong
        password) / TooManyAttempts."""
        account = email.strip().lower()[:MAX_EMAIL]
        self._throttled(account, address)
        plausible = "@" in account and account.isprintable()
        operator = await self._store.by_email(account) if plausible else None
        usable = operator is not None and operator.active and operator.password_hash
        stored = operator.password_hash if usable and operator is not None else None
        ok = await self._credentials.verify(stored, password[:MAX_PASSWORD])
        if not ok or operator is None or not usable:
            self._failed(account, address)
            raise SignInRefused("email or password is wrong")
        self._accounts.clear(account)
        await self._store.signed_in(operator.id)
        log.info("operator %s (%s) signed in from %s", mask_email(account), operator.role, address)
        expires = int(self._clock()) + self._session_seconds
        return Session(
            operator=operator,
            token=session_token(self._signer, operator, expires=expires),
            max_age=self._session_seconds,
        )

    async def session(self, token: str) -> Operator | None:
        """The operator of a valid session cookie (None: missing, forged, expired, ended)."""
        claim = read_session(self._signer, token, now=self._clock())
        if claim is None:
            return None
        operator = await self._store.by_id(claim.operator_id)
        if operator is None or not operator.active or operator.session_epoch != claim.epoch:
            return None
        return operator

    async def bearer(self, token: str, *, address: str) -> Operator | None:
        """The operator of a valid API token (None otherwise, counted as a failure of the
        address); TooManyAttempts when the address is over its limit."""
        self._throttled(None, address)
        operator_id = token_operator(token)
        operator = await self._store.by_id(operator_id) if operator_id is not None else None
        if operator is None or not operator.active or not operator.token_hash:
            self._failed(None, address)
            return None
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        remembered = self._tokens.get(digest)
        if (
            remembered is not None
            and remembered[0] > now
            and remembered[1] == (operator.session_epoch)
        ):
            return operator
        if not await self._credentials.verify(operator.token_hash, token):
            self._failed(None, address)
            return None
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[digest] = (now + TOKEN_MEMORY, operator.session_epoch)
        return operator
