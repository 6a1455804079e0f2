"""The log line of every gate decision, worded as the seed's orchestrator worded them.

A skipped address is masked; a whitelisted one is a test address and shown in full.
"""

from __future__ import annotations

import logging

from schemas.events import TouchPointCommand
from services.common.masking import mask_email
from services.common.whitelist import normalize_email
from services.outbound.domain.safety_gate import Decision, Verdict

log = logging.getLogger("services.outbound")


def log_decision(command: TouchPointCommand, decision: Decision, *, replay_send: bool) -> None:
    """Log what the gate decided for `command` (`replay_send`: OUTBOUND_REPLAY_SEND)."""
    email = command.recipient.email
    ids = {
        "tenant_id": command.tenant_id,
        "lead_id": command.lead_id,
        "command_id": command.command_id,
    }
    if decision.reason == "whitelist_empty":
        log.warning(
            "LEAD_EMAIL_WHITELIST is empty; skipping all outbound (email %s)",
            mask_email(email),
            extra=ids,
        )
    elif decision.reason == "no_email":
        log.info("Lead has no email; skipping all outbound", extra=ids)
    elif decision.reason == "not_whitelisted":
        log.info("Email %s NOT whitelisted; skipping all outbound", mask_email(email), extra=ids)
    elif decision.verdict is Verdict.SEND and command.record_only and not replay_send:
        # record-only replay: the gate allowed it, nothing is sent
        log.info(
            "[TouchPoint] Email %s is whitelisted → RECORDED (record-only, nothing sent)",
            _shown(email),
            extra=ids,
        )
    elif decision.verdict is Verdict.SEND:
        log.info("[TouchPoint] Email %s is whitelisted → SENDING", _shown(email), extra=ids)
    elif decision.verdict is Verdict.DEFER:
        log.info(
            "[TouchPoint] Email %s is whitelisted → %s DEFERRED until %s (send window)",
            _shown(email),
            command.channel.value,
            decision.deferred_until.isoformat() if decision.deferred_until else "?",
            extra=ids,
        )
    else:
        log.info(
            "[TouchPoint] Email %s is whitelisted → %s SKIPPED (%s)",
            _shown(email),
            command.channel.value,
            decision.reason,
            extra=ids,
        )


def _shown(email: str | None) -> str:
    """A whitelisted address is a test address: shown normalised, in full."""
    return normalize_email(email) or "<none>"
