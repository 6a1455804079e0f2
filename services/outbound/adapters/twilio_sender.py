"""SMS through the official `twilio` library (`messages.create_async`), over our no-retry HTTP
client (twilio_http.py).

Failure classes (see errors.py):
- 201 → accepted; `sid` is the provider id.
- 429 (20429: never processed), 401/403 (our credentials), or no connection made → retry.
- 5xx (Twilio's 20500: a create may have been processed), a read timeout or a dropped
  connection → ambiguous: reconcile by listing the recipient's messages.
- 400 21610 (recipient opted out: also a suppression), 21211 (invalid number), other 4xx
  → rejected for good.
- a message whose `To` is not the number the safety gate approved → rejected before any
  request (`recipient_not_approved`).

Reconciliation lists `Messages.json?To=<recipient>` newest first and matches our sender, a
creation time after the attempt window and the lead's chat link in the body. It does not filter
on `DateSent`: a message still queued at Twilio has no DateSent yet and would be missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from services.common.masking import mask_contacts, mask_phone
from services.outbound.adapters import metrics
from services.outbound.adapters.sendgrid_sender import retry_after
from services.outbound.adapters.twilio_http import LAST_HEADERS, RoutedAsyncHttpClient
from services.outbound.domain.model import (
    Found,
    Lookup,
    NotFound,
    OutboundMessage,
    Probe,
    SmsMessage,
    Unverifiable,
)
from services.outbound.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable

log = logging.getLogger(__name__)
NAME = "twilio"
PERMANENT_REASONS = {21610: "twilio_21610_opted_out", 21211: "twilio_21211_invalid_number"}
LOOKUP_LIMIT = 200


class TwilioSender:
    """`Sender` for SMS."""

    name = NAME

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        base_url: str,
        from_number: str | None,
        messaging_service_sid: str | None,
        status_callback: str | None,
        timeout: float,
        pool_size: int = 32,
    ) -> None:
        self._http = RoutedAsyncHttpClient(
            base_url=base_url,
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            pool_size=pool_size,
        )
        # environment: never let TWILIO_REGION / TWILIO_EDGE from os.environ rewrite the host.
        self._client = Client(
            account_sid,
            auth_token,
            http_client=self._http,
            environment={"TWILIO_REGION": "", "TWILIO_EDGE": ""},
        )
        self._from = from_number or None
        self._service = messaging_service_sid or None
        self._callback = status_callback
        self.pacing_key = f"twilio:{self._service or self._from}"

    lookup_settle_seconds = 1.0

    async def close(self) -> None:
        await self._http.close()

    async def send(self, message: OutboundMessage) -> str:
        assert isinstance(message, SmsMessage)
        if not message.approved_to or message.to != message.approved_to:
            # the gate approved another number (or none): never send, whatever came in between
            log.error(
                "[TouchPoint] SMS of command %s refused: To %s is not the number the gate "
                "approved (%s)",
                message.command_id,
                mask_phone(message.to),
                mask_phone(message.approved_to),
            )
            raise ProviderRejected(NAME, "recipient_not_approved")
        started = time.perf_counter()
        result = "error"
        try:
            created = await self._client.messages.create_async(
                to=message.to,
                body=message.body,
                from_=self._from if not self._service else _unset(),
                messaging_service_sid=self._service or _unset(),
                status_callback=self._callback or _unset(),
                validity_period=message.validity_seconds,
            )
            result = "accepted"
            return str(created.sid)
        except TwilioRestException as exc:
            error = _classify(exc)
            result = type(error).__name__.removeprefix("Provider").lower()
            raise error from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            result = "unavailable"
            raise ProviderUnavailable(
                NAME, f"connection failed: {mask_contacts(str(exc))}"
            ) from None
        except (aiohttp.ClientError, TimeoutError, TwilioException) as exc:
            result = "ambiguous"
            raise ProviderAmbiguous(NAME, f"no response: {mask_contacts(repr(exc))}") from None
        finally:
            metrics.PROVIDER_SECONDS.labels(NAME, result).observe(time.perf_counter() - started)

    async def lookup(self, probe: Probe, *, since: datetime) -> Lookup:
        try:
            async with asyncio.timeout(self._http_timeout_total()):
                seen = 0
                async for m in await self._client.messages.stream_async(
                    to=probe.recipient, page_size=50
                ):
                    seen += 1
                    created = m.date_created
                    if created is not None and created < since:
                        break  # newest first: everything after is older still
                    if self._ours(m.from_, m.messaging_service_sid) and probe.chat_link in (
                        m.body or ""
                    ):
                        return Found(str(m.sid))
                    if seen >= LOOKUP_LIMIT:
                        return Unverifiable("too many recent messages to this number")
        except TwilioRestException as exc:
            return Unverifiable(f"list failed: {exc.status} {exc.code}", retry_later=True)
        except (aiohttp.ClientError, TimeoutError, TwilioException) as exc:
            return Unverifiable(f"list failed: {exc!r}", retry_later=True)
        return NotFound()

    def _ours(self, sender: object, service: object) -> bool:
        if self._service:
            return service == self._service
        return sender == self._from

    def _http_timeout_total(self) -> float:
        return 60.0


def _unset() -> object:
    from twilio.base import values

    return values.unset


def _classify(exc: TwilioRestException) -> Exception:
    status, code = int(exc.status), int(exc.code or 0)
    if status == 429 or status in (401, 403) or code == 20429:
        if status in (401, 403):
            log.error("Twilio refused our credentials (%d): SMS paused until fixed", status)
        return ProviderUnavailable(
            NAME, f"twilio_{status}_{code}", retry_after=retry_after(LAST_HEADERS.get())
        )
    if status >= 500:
        return ProviderAmbiguous(NAME, f"twilio_{status}_{code}")
    if code in PERMANENT_REASONS:
        return ProviderRejected(NAME, PERMANENT_REASONS[code], suppress=code == 21610)
    # Twilio's message quotes the number it refused: masked like every contact in our texts
    return ProviderRejected(NAME, f"twilio_{code or status}: {mask_contacts(str(exc.msg))[:200]}")
