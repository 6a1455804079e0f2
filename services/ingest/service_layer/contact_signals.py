"""Provider webhooks, chat reports and one-click unsubscribes → ContactSignals.

Order of effects for every webhook, so that a "no" takes effect at once and nothing is lost:
1. the signature is checked by the caller (entrypoint) before anything here runs;
2. suppressions (STOP, bounce, spam report, unsubscribe) and opt-ins (START) are committed to
   PostgreSQL first, each in one transaction with the claim of its provider event (MessageSid,
   sg_event_id), so a replayed webhook changes nothing; a STOP or START older than the one
   recorded for that number (and tenant) changes nothing either, and a START lifts every SMS
   opt-out of the number (STOP, Twilio's 21610, outbound's `opted_out`) at that tenant: for
   the shared sender, every tenant. Twilio's inbound webhook carries no time of its own: a
   message counts from when ingest first received it;
3. in one transaction: the provider's event ids are claimed (dedupe), the touch point's delivery
   status is updated, the signals are sent to Kafka and acknowledged, then the transaction
   commits. A failed publish rolls back the claim and raises `PublishUnavailable` (503), so the
   provider's retry does it again; the suppression is already in place regardless.

Provider texts (SendGrid's bounce reasons, say) quote addresses and numbers: they are masked
before they are stored, published or logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from schemas.base import Channel
from schemas.events import ContactSignal, SignalKind
from services.common.domain.signed_links import UnsubscribeClaim
from services.common.masking import mask_phone
from services.common.phones import normalize_phone
from services.common.whitelist import normalize_email
from services.ingest.domain import provider_sendgrid, provider_twilio
from services.ingest.domain.model import Consent, ConsentChange
from services.ingest.domain.provider_twilio import Keyword
from services.ingest.ports import SignalPublisher, SignalStore

log = logging.getLogger(__name__)
CHAT_KINDS = frozenset(
    {
        SignalKind.CHAT_OPENED,
        SignalKind.APPOINTMENT_BOOKED,
        SignalKind.QUALIFIED,
        SignalKind.LOST,
    }
)


@dataclass(frozen=True, slots=True)
class BatchResult:
    received: int
    new: int
    signals: int
    suppressed: int


@dataclass(frozen=True, slots=True)
class InboundResult:
    keyword: Keyword
    leads: int
    signals: int
    reply: str | None


@dataclass(frozen=True, slots=True)
class StatusResult:
    status: str
    matched: bool
    signals: int


def _now() -> datetime:
    return datetime.now(UTC)


class SignalService:
    """What each provider webhook and the chat API do; ports injected, no I/O of its own."""

    def __init__(
        self,
        *,
        store: SignalStore,
        publisher: SignalPublisher,
        help_text: str,
        clock: Callable[[], datetime] = _now,
        unmatched_wait: tuple[float, ...] = (0.25, 0.5, 1.0),
    ) -> None:
        """`unmatched_wait`: pauses before looking again for the touch point of a final status
        callback that arrived before outbound recorded the message sid (a race, not an error)."""
        self._store = store
        self._publisher = publisher
        self._help_text = help_text
        self._clock = clock
        self._unmatched_wait = unmatched_wait

    # SendGrid ----------------------------------------------------------------------------------
    async def sendgrid_events(self, body: bytes) -> BatchResult:
        """A verified Event Webhook batch. Raises NotAnEventBatch / PublishUnavailable."""
        now = self._clock()
        events = provider_sendgrid.parse_batch(body, now)
        suppressed = 0
        for event in events:
            if event.suppress and event.email:
                suppressed += await self._store.suppress(
                    channel=Channel.EMAIL,
                    contact=event.email,
                    reason=event.suppress,
                    source="sendgrid",
                    claim=("sendgrid_suppress", event.event_key),
                )
        signals: list[ContactSignal] = []
        async with self._store.unit() as unit:
            fresh = await unit.claim(
                provider_sendgrid.PROVIDER, [e.event_key for e in events if e.tenant_id]
            )
            for event in events:
                if event.event_key not in fresh or event.tenant_id is None:
                    continue
                if event.delivery_status and event.command_id:
                    await unit.delivery_by_command(
                        event.command_id,
                        status=event.delivery_status,
                        error=event.detail if event.kind is not SignalKind.DELIVERED else None,
                        at=event.occurred_at,
                        not_after=_email_not_after(event.delivery_status),
                    )
                if event.kind is not None:
                    signals.append(
                        ContactSignal(
                            signal_id=event.signal_id,
                            tenant_id=event.tenant_id,
                            lead_id=event.lead_id,
                            kind=event.kind,
                            channel=Channel.EMAIL,
                            command_id=event.command_id,
                            contact=event.email,
                            occurred_at=event.occurred_at,
                            source="sendgrid",
                            detail=event.detail,
                        )
                    )
            await self._publisher.publish(signals)
        unmatched = sum(1 for e in events if e.tenant_id is None)
        if unmatched:
            log.info("sendgrid: %d event(s) without our custom_args (no signal)", unmatched)
        return BatchResult(len(events), len(fresh), len(signals), suppressed)

    # Twilio ------------------------------------------------------------------------------------
    async def twilio_status(
        self, *, message_sid: str, message_status: str, error_code: str | None, to: str | None
    ) -> StatusResult | None:
        """A verified status callback; None when it carries no status we know."""
        update = provider_twilio.status_update(message_sid, message_status, error_code)
        if update is None:
            return None
        now = self._clock()
        phone = normalize_phone(to)
        if update.suppress and phone:
            await self._store.suppress(
                channel=Channel.SMS,
                contact=phone,
                reason=update.suppress,
                source="twilio_status",
                claim=("twilio_status_suppress", update.event_key),
            )
        signals: list[ContactSignal] = []
        async with self._store.unit() as unit:
            waits = iter(self._unmatched_wait if update.kind is not None else ())
            while True:
                row = await unit.delivery_by_message(
                    update.message_sid,
                    status=update.status,
                    error=update.error_code,
                    at=now,
                    not_after=update.not_after,
                )
                pause = next(waits, None)
                if row is not None or pause is None:
                    break
                await asyncio.sleep(pause)  # READ COMMITTED: the next look sees new commits
            if row is None:
                log.warning("twilio status %s for unknown message %s", update.status, message_sid)
                return StatusResult(update.status, False, 0)
            fresh = await unit.claim("twilio_status", [update.event_key], row.tenant_id)
            if fresh and update.kind is not None:
                signals.append(
                    ContactSignal(
                        signal_id=f"twilio:{update.event_key}",
                        tenant_id=row.tenant_id,
                        lead_id=row.lead_id,
                        kind=update.kind,
                        channel=Channel.SMS,
                        command_id=row.command_id,
                        contact=row.recipient or phone,
                        occurred_at=now,
                        source="twilio",
                        detail=f"error_code={update.error_code}" if update.error_code else None,
                    )
                )
            await self._publisher.publish(signals)
        return StatusResult(update.status, True, len(signals))

    async def twilio_inbound(
        self,
        *,
        message_sid: str,
        sender: str | None,
        body: str | None,
        opt_out_type: str | None = None,
    ) -> InboundResult:
        """A verified inbound SMS: STOP/START/HELP or a reply; returns what to answer."""
        keyword = provider_twilio.classify(body, opt_out_type)
        reply = self._help_text if keyword is Keyword.HELP else None
        phone = normalize_phone(sender)
        if phone is None:
            log.warning("twilio inbound without a usable From number; ignored")
            return InboundResult(keyword, 0, 0, reply)
        kind = provider_twilio.SIGNAL_OF_KEYWORD.get(keyword)
        opting = keyword in (Keyword.OPT_OUT, Keyword.OPT_IN)
        if opting and not await self._opt(message_sid, phone, opted_out=keyword is Keyword.OPT_OUT):
            kind = None  # an older STOP/START than the one recorded: nothing to tell
        signals: list[ContactSignal] = []
        async with self._store.unit() as unit:
            leads = await unit.leads_for_contact(Channel.SMS, phone)
            fresh = await unit.claim("twilio_inbound", [message_sid])
            if fresh and kind is not None:
                now = self._clock()
                signals = [
                    ContactSignal(
                        signal_id=f"twilio:{message_sid}:{lead_id}",
                        tenant_id=tenant_id,
                        lead_id=lead_id,
                        kind=kind,
                        channel=Channel.SMS,
                        contact=phone,
                        occurred_at=now,
                        source="twilio_inbound",
                        detail=keyword.value if keyword is not Keyword.NONE else None,
                    )
                    for tenant_id, lead_id in leads
                ]
            await self._publisher.publish(signals)
        return InboundResult(keyword, len(leads), len(signals), reply)

    async def _opt(self, message_sid: str, phone: str, *, opted_out: bool) -> bool:
        """Record an SMS STOP/START of the shared sender (every tenant); False when it is
        older than the one recorded for the number."""
        result = await self._store.consent(
            ConsentChange(
                channel=Channel.SMS,
                contact=phone,
                opted_out=opted_out,
                at=self._clock(),
                provider="twilio_consent",
                event_key=message_sid,
                source="twilio_inbound",
                reason="sms_stop",
                lifts=provider_twilio.SMS_OPT_OUT_REASONS,
            )
        )
        word = "opt-out" if opted_out else "opt-in"
        if result.consent is Consent.STALE:
            log.info(
                "SMS %s from %s is older than the last one: nothing changed",
                word,
                mask_phone(phone),
            )
            return False
        if result.consent is Consent.DUPLICATE:
            log.info("SMS %s %s from %s was recorded before", word, message_sid, mask_phone(phone))
        elif opted_out:
            log.info("SMS opt-out from %s: suppressed on every location", mask_phone(phone))
        else:
            log.info(
                "SMS opt-in from %s: %d suppression(s) lifted",
                mask_phone(phone),
                result.suppressions_changed,
            )
        return True

    # one-click unsubscribe (RFC 8058, the List-Unsubscribe URL of every email) ---------------
    async def unsubscribe(self, claim: UnsubscribeClaim, *, brand_wide: bool) -> bool:
        """Suppress the address a signed unsubscribe link names (the one its message went to,
        found among the lead's addresses by the link's digest) at the link's location, which
        the outbound gate applies to every location of its company, or, `brand_wide`, at
        every location; then emit the unsubscribed signal. False when the lead has no such
        address (nothing changed)."""
        known = await self._store.lead_contacts(
            tenant_id=claim.tenant_id, lead_id=claim.lead_id, channel=claim.channel
        )
        normal = normalize_email if claim.channel is Channel.EMAIL else normalize_phone
        contact = next(
            (c for c in (normal(k) for k in known) if c is not None and claim.matches(c)), None
        )
        if contact is None:
            return False
        await self._store.suppress(
            channel=claim.channel,
            contact=contact,
            reason="list_unsubscribe",
            source="one_click",
            tenant_id=None if brand_wide else claim.tenant_id,
        )
        signal = ContactSignal(
            signal_id=f"unsubscribe:{claim.tenant_id}:{claim.lead_id}:{claim.channel.value}",
            tenant_id=claim.tenant_id,
            lead_id=claim.lead_id,
            kind=SignalKind.UNSUBSCRIBED,
            channel=claim.channel,
            contact=contact,
            occurred_at=self._clock(),
            source="one_click_unsubscribe",
        )
        await self._publisher.publish([signal])
        return True

    # chat service / operator -------------------------------------------------------------------
    async def chat_signal(
        self,
        *,
        tenant_id: uuid.UUID,
        lead_id: uuid.UUID,
        kind: SignalKind,
        event_id: str | None,
        occurred_at: datetime | None,
        detail: str | None,
    ) -> ContactSignal:
        """A report of the chat service or an operator (the lead was checked by the caller)."""
        if kind not in CHAT_KINDS:
            raise ValueError(f"kind must be one of {sorted(k.value for k in CHAT_KINDS)}")
        signal = ContactSignal(
            signal_id=f"chat:{tenant_id}:{event_id or uuid.uuid4()}",
            tenant_id=tenant_id,
            lead_id=lead_id,
            kind=kind,
            occurred_at=occurred_at or self._clock(),
            source="chat_api",
            detail=detail,
        )
        await self._publisher.publish([signal])
        return signal


def _email_not_after(status: str) -> tuple[str, ...]:
    """Email delivery statuses only move forward (processed < deferred < final)."""
    rank = {"processed": 0, "deferred": 1, "delivered": 2, "bounced": 2, "dropped": 2}
    mine = rank.get(status, 2)
    return tuple(s for s, r in {**rank, "blocked": 2}.items() if r > mine)
