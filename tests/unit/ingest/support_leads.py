"""Hand-written fakes of the lead desk's ports: leads in memory (search by prefix like the
PostgreSQL adapter), a timeline of what was published."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from services.common.kafka.lead_scan import KafkaScan
from services.ingest.service_layer.lead_desk import LeadDesk
from tests.unit.ingest.support_signals import FakePublisher, FakeStore


def lead_row(tenant: uuid.UUID, **values: Any) -> dict[str, Any]:
    row = {
        "lead_id": uuid.uuid4(),
        "tenant_id": tenant,
        "tenant_name": "Austin",
        "state": "new",
        "first_name": "Jane",
        "last_name": "Doe",
        "email": "jane.doe@gmail.com",
        "phone": "+12025550123",
        "order_number": "1001",
        "sequence_stopped": False,
        "updated_at": datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
    }
    return row | values


@dataclass
class FakeDirectory:
    leads: list[dict[str, Any]] = field(default_factory=list)
    asked: list[frozenset[uuid.UUID] | None] = field(default_factory=list)

    async def search(
        self, *, tenants: frozenset[uuid.UUID] | None, query: str, limit: int, offset: int
    ) -> list[dict[str, Any]]:
        self.asked.append(tenants)
        q = query.lower()

        def hit(row: dict[str, Any]) -> bool:
            fields = [row["first_name"], row["last_name"], row["email"], row["order_number"]]
            return any((f or "").lower().startswith(q) for f in fields) or str(
                row["lead_id"]
            ).startswith(q)

        rows = [r for r in self.leads if (tenants is None or r["tenant_id"] in tenants) and hit(r)]
        return rows[offset : offset + limit]

    async def lead(self, lead_id: uuid.UUID) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        found = next((r for r in self.leads if r["lead_id"] == lead_id), None)
        return found, []


@dataclass
class FakeTimeline:
    publisher: FakePublisher

    async def scan(self, *, lead_id: uuid.UUID, tenant_id: uuid.UUID) -> KafkaScan:
        events = [
            {
                "kind": "signal",
                "topic": "leads.contact-signals.v1",
                "offset": n,
                "kafka_time": s.occurred_at,
                "body": s.model_dump(mode="json"),
            }
            for n, s in enumerate(self.publisher.published)
            if s.lead_id == lead_id
        ]
        return KafkaScan(events=events)


@dataclass
class Desk:
    desk: LeadDesk
    directory: FakeDirectory
    store: FakeStore
    publisher: FakePublisher


def fake_desk(*leads: dict[str, Any], whitelist: frozenset[str] = frozenset()) -> Desk:
    directory, store, publisher = FakeDirectory(list(leads)), FakeStore(), FakePublisher()
    desk = LeadDesk(
        directory=directory,
        timeline=FakeTimeline(publisher),
        store=store,
        publisher=publisher,
        whitelist=whitelist,
    )
    return Desk(desk, directory, store, publisher)
