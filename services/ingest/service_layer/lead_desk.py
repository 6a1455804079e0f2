"""The dashboard's leads: search, a lead's page (what `leadctl leads show` prints) and what an
operator may do to a lead — stop its sequence, resume it, mark it lost, suppress its contact.

Scoped on the server like the summary: an operator finds and opens only leads of the
locations it sees (any other lead is `UnknownTenant`, a 404, the same as a lead that does not
exist). Contacts are masked unless the lead's email is whitelisted.

Every action is a contact signal through Kafka (the sequencer applies it; the read model is
never written here), audited in the signal itself: `source` "dashboard", `occurred_at` when,
`detail` who (the operator's email) and why (the reason the operator gave, required). A
suppression is also recorded in the suppression list (per location's company, as an
unsubscribe is) before its signals go out.
"""

from __future__ import annotations

import logging
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas import bounds
from schemas.base import Channel
from schemas.events import ContactSignal, SignalKind
from services.common.domain.operators import Operator
from services.common.lead_report import json_report, masker_for, newest_in_order, when
from services.common.phones import normalize_phone
from services.common.whitelist import normalize_email
from services.ingest.errors import InvalidPayload, UnknownTenant
from services.ingest.ports import LeadDirectory, LeadTimeline, SignalPublisher, SignalStore

log = logging.getLogger(__name__)

PAGE_SIZE = 25
MAX_QUERY = 100
MAX_PAGE = 200
#: action → the signal kind it emits (suppress: one `opted_out` per channel it suppresses)
ACTIONS = {
    "stop": SignalKind.SEQUENCE_STOPPED,
    "resume": SignalKind.SEQUENCE_RESUMED,
    "lost": SignalKind.LOST,
    "suppress": SignalKind.OPTED_OUT,
}
TIMELINE_ROWS = 200


def _now() -> datetime:
    return datetime.now(UTC)


def _printable(text: str) -> bool:
    return not any(unicodedata.category(ch).startswith("C") for ch in text)


class LeadDesk:
    def __init__(
        self,
        *,
        directory: LeadDirectory,
        timeline: LeadTimeline,
        store: SignalStore,
        publisher: SignalPublisher,
        whitelist: frozenset[str],
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._directory = directory
        self._timeline = timeline
        self._store = store
        self._publisher = publisher
        self._whitelist = whitelist
        self._clock = clock

    async def search(self, viewer: Operator, query: str, page: int) -> dict[str, Any]:
        """A page of the viewer's leads matching `query` (empty: the newest)."""
        query = query.strip()
        if len(query) > MAX_QUERY or not _printable(query):
            raise InvalidPayload(f"q: at most {MAX_QUERY} printable characters")
        if not 0 <= page <= MAX_PAGE:
            raise InvalidPayload(f"page must be 0 to {MAX_PAGE}")
        rows = await self._directory.search(
            tenants=viewer.scope, query=query, limit=PAGE_SIZE + 1, offset=page * PAGE_SIZE
        )
        leads = []
        for row in rows[:PAGE_SIZE]:
            mask = masker_for(self._whitelist, row["email"])
            name = " ".join(filter(None, (row["first_name"], row["last_name"])))
            leads.append(
                {
                    "lead_id": str(row["lead_id"]),
                    "location": row["tenant_name"],
                    "name": name or None,
                    "email": mask.email(row["email"]),
                    "phone": mask.phone(row["phone"]),
                    "order_number": row["order_number"],
                    "state": row["state"],
                    "sequence_stopped": row["sequence_stopped"],
                    "updated_at": row["updated_at"].isoformat(),
                }
            )
        return {"query": query, "page": page, "leads": leads, "more": len(rows) > PAGE_SIZE}

    async def _visible(
        self, viewer: Operator, lead_id: uuid.UUID
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        lead, jobs = await self._directory.lead(lead_id)
        if lead is None or not viewer.sees(lead["tenant_id"]):
            raise UnknownTenant("unknown lead")
        return lead, jobs

    async def show(self, viewer: Operator, lead_id: uuid.UUID) -> dict[str, Any]:
        """The lead's page: its row, touch points and timeline from Kafka (masked)."""
        lead, jobs = await self._visible(viewer, lead_id)
        tenant = lead["tenant_id"]
        scan = await self._timeline.scan(lead_id=lead_id, tenant_id=tenant)
        timeline = newest_in_order(scan, TIMELINE_ROWS)
        since = min((when(e) for e in timeline), default=self._clock())
        report = json_report(
            lead_id=lead_id,
            tenant_id=tenant,
            lead=lead,
            jobs=jobs,
            scan=scan,
            timeline=timeline,
            since=since,
            mask=masker_for(self._whitelist, lead.get("email")),
        )
        return {**report, "location": lead.get("tenant_name"), "actions": sorted(ACTIONS)}

    async def act(
        self, viewer: Operator, lead_id: uuid.UUID, action: str, reason: str
    ) -> dict[str, Any]:
        """Do `action` to the lead, audited (who, when, why); returns what was emitted."""
        kind = ACTIONS.get(action)
        if kind is None:
            raise InvalidPayload(f"action must be one of: {', '.join(sorted(ACTIONS))}")
        reason = " ".join(reason.split())
        who = f"{viewer.email}: "
        if not reason or not _printable(reason):
            raise InvalidPayload("reason: say why (printable text)")
        if len(who) + len(reason) > bounds.SIGNAL_DETAIL:
            raise InvalidPayload(f"reason: at most {bounds.SIGNAL_DETAIL - len(who)} characters")
        lead, _ = await self._visible(viewer, lead_id)
        tenant: uuid.UUID = lead["tenant_id"]
        at = self._clock()
        channels: list[Channel | None] = [None]
        if action == "suppress":
            channels = await self._suppress(viewer, tenant, lead)
        signals = [
            ContactSignal(
                signal_id=f"operator:{uuid.uuid4()}",
                tenant_id=tenant,
                lead_id=lead_id,
                kind=kind,
                channel=channel,
                occurred_at=at,
                source="dashboard",
                detail=who + reason,
            )
            for channel in channels
        ]
        await self._publisher.publish(signals)
        log.info(
            "operator %s: %s lead %s (%s)",
            viewer.id,
            action,
            lead_id,
            ", ".join(s.kind.value for s in signals),
            extra={"tenant_id": str(tenant), "lead_id": str(lead_id)},
        )
        return {
            "action": action,
            "signals": [s.signal_id for s in signals],
            "at": at.isoformat(),
            "by": viewer.email,
            "reason": reason,
        }

    async def _suppress(
        self, viewer: Operator, tenant: uuid.UUID, lead: dict[str, Any]
    ) -> list[Channel | None]:
        """The lead's email and phone on the suppression list (its location's company)."""
        contacts = [
            (Channel.EMAIL, normalize_email(lead.get("email"))),
            (Channel.SMS, normalize_phone(lead.get("phone"))),
        ]
        done: list[Channel | None] = []
        for channel, contact in contacts:
            if contact is None:
                continue
            await self._store.suppress(
                channel=channel,
                contact=contact,
                reason="operator",
                source="dashboard",
                tenant_id=tenant,
            )
            done.append(channel)
        if not done:
            raise InvalidPayload("the lead has no email or phone to suppress")
        return done
