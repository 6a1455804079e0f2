"""Hand-written fakes of the operator ports (accounts in memory, a transparent "hash") and the
admin app built on them, for the tests of sign-in, sessions and the dashboard's scoping."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from services.common.domain.operators import Operator
from services.common.domain.signed_links import OPERATOR_SESSION, Signer
from services.ingest.service_layer.operator_access import OperatorAccess, SignInLimits
from tests.support.deployment_secrets import LINK_SIGNING_KEY


def fake_hash(secret: str) -> str:
    return f"fake-hash:{secret}"


@dataclass
class FakeCredentials:
    checks: int = 0

    async def verify(self, stored_hash: str | None, secret: str) -> bool:
        self.checks += 1
        return stored_hash is not None and stored_hash == fake_hash(secret)


@dataclass
class FakeOperatorStore:
    accounts: dict[uuid.UUID, Operator] = field(default_factory=dict)
    signed_in_ids: list[uuid.UUID] = field(default_factory=list)

    def add(
        self,
        email: str,
        role: str = "hq",
        *,
        password: str | None = "right password",
        token: str | None = None,
        tenants: frozenset[uuid.UUID] = frozenset(),
        operator_id: uuid.UUID | None = None,
    ) -> Operator:
        operator = Operator(
            id=operator_id or uuid.uuid4(),
            email=email,
            role=role,
            active=True,
            session_epoch=0,
            tenant_ids=tenants,
            password_hash=fake_hash(password) if password else None,
            token_hash=fake_hash(token) if token else None,
        )
        self.accounts[operator.id] = operator
        return operator

    def change(self, operator: Operator, **values: object) -> Operator:
        """Like `leadctl operators reset|disable`: the epoch moves on."""
        changed = replace(
            self.accounts[operator.id], session_epoch=operator.session_epoch + 1, **values
        )
        self.accounts[operator.id] = changed
        return changed

    async def by_email(self, email: str) -> Operator | None:
        return next((o for o in self.accounts.values() if o.email == email), None)

    async def by_id(self, operator_id: uuid.UUID) -> Operator | None:
        return self.accounts.get(operator_id)

    async def signed_in(self, operator_id: uuid.UUID) -> None:
        self.signed_in_ids.append(operator_id)


def operator_access(
    store: FakeOperatorStore,
    *,
    credentials: FakeCredentials | None = None,
    limits: SignInLimits | None = None,
    clock: object = None,
) -> OperatorAccess:
    kwargs = {"clock": clock} if clock is not None else {}
    return OperatorAccess(
        store=store,
        credentials=credentials or FakeCredentials(),
        signer=Signer([LINK_SIGNING_KEY.encode()], OPERATOR_SESSION),
        session_seconds=3600,
        limits=limits or SignInLimits(),
        **kwargs,  # type: ignore[arg-type]
    )
