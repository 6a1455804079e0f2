"""The in-memory ledger the unit tests use, held to the `Ledger` contract that the PostgreSQL
ledger meets too (tests/integration/outbound/test_outbound_ledger_pg.py)."""

from __future__ import annotations

import uuid

import pytest

from schemas.base import Channel
from tests.support.ledger_contract import LedgerContract, OptOutLead, SuppressGlobally
from tests.unit.outbound.support import InMemoryLedger


class TestInMemoryLedger(LedgerContract):
    @pytest.fixture
    def ledger(self) -> InMemoryLedger:
        return InMemoryLedger()

    @pytest.fixture
    def tenant_id(self) -> uuid.UUID:
        return uuid.uuid4()

    @pytest.fixture
    def suppress_globally(self, ledger: InMemoryLedger) -> SuppressGlobally:
        async def suppress(channel: Channel, contact: str) -> None:
            ledger.suppressions.add((None, channel, contact))

        return suppress

    @pytest.fixture
    def opt_out_lead(self, ledger: InMemoryLedger) -> OptOutLead:
        async def opt_out(lead_id: uuid.UUID, channel: Channel) -> None:
            ledger.opt_out_lead(lead_id, channel)

        return opt_out
