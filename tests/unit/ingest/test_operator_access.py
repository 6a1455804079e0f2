"""Operator sign-in as a use case (fake store and hash): failures limited per account and per
address within a window, logged without the password or the full email; sessions end when they
expire or the account's epoch moves on; an unknown email costs a hash check like a known one."""

from __future__ import annotations

import logging

import pytest

from services.ingest.errors import SignInRefused, TooManyAttempts
from services.ingest.service_layer.operator_access import SignInLimits
from tests.unit.ingest.support_operators import (
    FakeCredentials,
    FakeOperatorStore,
    operator_access,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_failed_sign_ins_are_limited_per_account_then_per_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, store = Clock(), FakeOperatorStore()
    store.add("jane.doe@example.com")
    access = operator_access(
        store, limits=SignInLimits(per_account=3, per_address=5, window_seconds=600), clock=clock
    )
    caplog.set_level(logging.INFO)
    for _ in range(3):
        with pytest.raises(SignInRefused):
            await access.sign_in("jane.doe@example.com", "guess-1234", address="10.0.0.9")
    with pytest.raises(TooManyAttempts) as blocked:  # even the right password, for now
        await access.sign_in("jane.doe@example.com", "right password", address="10.0.0.8")
    assert 0 < blocked.value.retry_after <= 600
    # other accounts from the same address: the address limit (5) stops the spraying
    for name in ("a", "b"):
        with pytest.raises(SignInRefused):
            await access.sign_in(f"{name}@example.com", "guess-1234", address="10.0.0.9")
    with pytest.raises(TooManyAttempts):
        await access.sign_in("c@example.com", "guess-1234", address="10.0.0.9")
    text = caplog.text
    assert "guess-1234" not in text and "right password" not in text
    assert "jane.doe@" not in text and "j***@example.com" in text and "10.0.0.9" in text
    clock.now += 601  # the window has passed: the account may try again
    session = await access.sign_in("jane.doe@example.com", "right password", address="10.0.0.9")
    assert session.operator.email == "jane.doe@example.com"


async def test_a_blocked_address_costs_no_hash_check() -> None:
    store, credentials = FakeOperatorStore(), FakeCredentials()
    access = operator_access(
        store, credentials=credentials, limits=SignInLimits(per_account=100, per_address=2)
    )
    for _ in range(2):
        with pytest.raises(SignInRefused):
            await access.sign_in("x@example.com", "p", address="1.2.3.4")
    assert credentials.checks == 2  # an unknown email costs a check too (same timing)
    for _ in range(50):
        with pytest.raises(TooManyAttempts):
            await access.sign_in("x@example.com", "p", address="1.2.3.4")
    assert credentials.checks == 2


async def test_sessions_expire_and_end_with_the_accounts_epoch() -> None:
    clock, store = Clock(), FakeOperatorStore()
    operator = store.add("hq@example.com")
    access = operator_access(store, clock=clock)
    session = await access.sign_in("hq@example.com", "right password", address="a")
    assert (await access.session(session.token)) == operator
    clock.now += session.max_age + 1
    assert await access.session(session.token) is None  # expired
    clock.now -= session.max_age + 1
    store.change(operator)  # reset: epoch + 1
    assert await access.session(session.token) is None
    assert await access.session(session.token[:-1] + "A") is None
