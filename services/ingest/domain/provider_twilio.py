"""Twilio SMS webhooks → what they mean for a lead (pure; no I/O).

- Inbound messages: the opt-out / opt-in / help keywords (reference/messaging.md §3.5; REVOKE
  and OPTOUT since 2025-04-29), any case, surrounding whitespace and trailing punctuation
  ignored; Advanced Opt-Out's `OptOutType` wins when Twilio sends it. Anything else is a reply.
- Status callbacks: `MessageStatus` + `ErrorCode` → signal, delivery status, suppression.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.events import SignalKind

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
#: Suppression reasons of an SMS opt-out (inbound STOP, Twilio's 21610 on a status callback,
#: outbound's `opted_out` after a 21610 send): an opt-in (START) lifts exactly these.
SMS_OPT_OUT_REASONS = ("sms_stop", "twilio_21610", "opted_out")


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    NONE = "none"


def classify(body: str | None, opt_out_type: str | None = None) -> Keyword:
    """Which keyword an inbound SMS is, if any ("STOP please" is not one: it is a reply)."""
    advanced = (opt_out_type or "").strip().upper()
    if advanced == "STOP":
        return Keyword.OPT_OUT
    if advanced == "START":
        return Keyword.OPT_IN
    if advanced == "HELP":
        return Keyword.HELP
    word = (body or "").strip().rstrip(".!").strip().upper()
    if word in OPT_OUT_WORDS:
        return Keyword.OPT_OUT
    if word in OPT_IN_WORDS:
        return Keyword.OPT_IN
    if word in HELP_WORDS:
        return Keyword.HELP
    return Keyword.NONE


SIGNAL_OF_KEYWORD = {
    Keyword.OPT_OUT: SignalKind.OPTED_OUT,
    Keyword.OPT_IN: SignalKind.OPTED_IN,
    Keyword.NONE: SignalKind.REPLIED,
}

#: MessageStatus → signal kind (None: informational, only the delivery status changes)
_STATUS_SIGNAL = {
    "delivered": SignalKind.DELIVERED,
    "undelivered": SignalKind.UNDELIVERED,
    "failed": SignalKind.FAILED,
}
#: Delivery statuses only move forward: a late "sent" never overwrites "delivered".
_RANK = {
    "queued": 0,
    "accepted": 0,
    "scheduled": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "canceled": 3,
    "read": 4,
}
#: Error codes that mean this number must not get SMS again (21610: the recipient replied STOP
#: to this sender; 30005: unknown or inactive number; 30006: landline or unreachable carrier).
SUPPRESSING_ERRORS = {"21610": "twilio_21610", "30005": "twilio_30005", "30006": "twilio_30006"}


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    message_sid: str
    status: str
    kind: SignalKind | None
    error_code: str | None
    suppress: str | None

    @property
    def event_key(self) -> str:
        return f"{self.message_sid}:{self.status}"

    @property
    def not_after(self) -> tuple[str, ...]:
        """Delivery statuses this update must not overwrite (they are further along)."""
        rank = _RANK.get(self.status, 0)
        return tuple(s for s, r in _RANK.items() if r > rank)


def status_update(
    message_sid: str, message_status: str, error_code: str | None
) -> StatusUpdate | None:
    status = message_status.strip().lower()
    if not message_sid or status not in _RANK:
        return None
    code = (error_code or "").strip() or None
    return StatusUpdate(
        message_sid=message_sid,
        status=status,
        kind=_STATUS_SIGNAL.get(status),
        error_code=code,
        suppress=SUPPRESSING_ERRORS.get(code or "") if status in _STATUS_SIGNAL else None,
    )
