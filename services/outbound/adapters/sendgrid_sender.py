"""Email through the official `sendgrid` library (Mail helper), run in a thread pool because
the library is synchronous and has no default timeout (DESIGN §9). It sends through kept-alive
connections (sendgrid_http.py), not a new one per mail.

Failure classes (see errors.py):
- 202 → accepted; the `X-Message-Id` header is the provider id.
- 429 (documented: the endpoint refuses until the limit resets), 503 (RFC 9110: the server did
  not handle the request), 401/403 (our key), or a failure while connecting / writing the
  request (urllib wraps those in URLError) → not processed: retry.
- 500, 502, 504 and other 5xx, a timeout or a dropped connection while waiting for the
  response → ambiguous: SendGrid documents no idempotency and nothing about what a 500 did,
  so the mail may be queued; reconcile (SENDGRID_RECONCILE=activity) or mark it `unknown`.
- a 3xx (never followed: a Mail Send is not re-posted elsewhere) → not processed: retry, and
  an error log (SENDGRID_API_BASE_URL is wrong).
- other 4xx → rejected for good.

Reconciliation asks the Email Activity API (`GET /v3/messages?query=unique_args['command_id']=
"…"`), a paid add-on, when SENDGRID_RECONCILE=activity; otherwise it cannot tell.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import time
import urllib.error
from concurrent.futures import Executor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from python_http_client import exceptions as http_errors
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Category, CustomArg, From, Header, Mail, To

from services.common.errors import ConfigError
from services.common.masking import mask_contacts
from services.outbound.adapters import metrics
from services.outbound.adapters.sendgrid_http import ConnectionPool, KeptAliveClient, proxy_for
from services.outbound.domain.model import (
    EmailMessage,
    Found,
    Lookup,
    NotFound,
    OutboundMessage,
    Probe,
    Unverifiable,
)
from services.outbound.errors import ProviderAmbiguous, ProviderRejected, ProviderUnavailable

log = logging.getLogger(__name__)
NAME = "sendgrid"
RETRYABLE = {401, 403, 429, 503}
AMBIGUOUS = {502, 504}


def build_mail(message: EmailMessage) -> dict[str, Any]:
    """The v3 Mail Send body, built by the library's Mail helper."""
    mail = Mail(
        from_email=From(message.from_email, message.from_name),
        to_emails=To(message.to),
        subject=message.subject,
        plain_text_content=message.text,
        html_content=message.html,
    )
    mail.custom_arg = [
        CustomArg("command_id", str(message.command_id)),
        CustomArg("lead_id", str(message.lead_id)),
        CustomArg("tenant_id", str(message.tenant_id)),
    ]
    mail.header = [
        Header("List-Unsubscribe", f"<{message.unsubscribe_url}>"),
        Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    ]
    mail.category = Category("nurture")
    body: dict[str, Any] = mail.get()
    return body


def retry_after(headers: Any) -> float | None:
    """Seconds from `Retry-After` (seconds or HTTP date) or `X-RateLimit-Reset` (unix time)."""
    if headers is None:
        return None
    value = headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                return None
    reset = headers.get("X-RateLimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
    return None


class SendGridSender:
    """`Sender` for email."""

    name = NAME

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        timeout: float,
        executor: Executor,
        reconcile: str = "none",
        settle_seconds: float = 120.0,
        max_connections: int = 32,
    ) -> None:
        self._client = SendGridAPIClient(api_key=api_key, host=base_url.rstrip("/"))
        proxy = proxy_for(self._client.host)
        if proxy is not None:
            raise ConfigError(
                f"{proxy} is set and applies to SENDGRID_API_BASE_URL's host, but outbound does"
                " not send through proxies: add the host to NO_PROXY, or unset the proxy"
            )
        self.pool = ConnectionPool(self._client.host, max_idle=max_connections)
        # every header set before the threads share it: the library would otherwise add
        # Content-Type to this dict on a first POST while another thread reads it
        headers = {**self._client.client.request_headers, "Content-Type": "application/json"}
        self._client.client = KeptAliveClient(
            self.pool, host=self._client.host, request_headers=headers, version=3
        )
        self._timeout = timeout
        self._executor = executor
        self._reconcile = reconcile
        self._settle = settle_seconds
        self.pacing_key = f"sendgrid:{api_key[-6:]}"

    @property
    def lookup_settle_seconds(self) -> float:
        return self._settle

    async def close(self) -> None:
        self.pool.close()

    async def send(self, message: OutboundMessage) -> str:
        assert isinstance(message, EmailMessage)
        body = build_mail(message)
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        result = "error"
        try:
            msg_id = await loop.run_in_executor(self._executor, self._post, body)
            result = "accepted"
            return msg_id
        except ProviderUnavailable:
            result = "unavailable"
            raise
        except ProviderAmbiguous:
            result = "ambiguous"
            raise
        except ProviderRejected:
            result = "rejected"
            raise
        finally:
            metrics.PROVIDER_SECONDS.labels(NAME, result).observe(time.perf_counter() - started)

    def _post(self, body: dict[str, Any]) -> str:
        try:
            response = self._client.client.mail.send.post(request_body=body, timeout=self._timeout)
        except http_errors.HTTPError as exc:
            raise self._classify(exc) from None
        except urllib.error.URLError as exc:  # connect / write failed: nothing was processed
            raise ProviderUnavailable(NAME, f"connection failed: {exc.reason}") from None
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as exc:
            raise ProviderAmbiguous(NAME, f"no response: {mask_contacts(repr(exc))}") from None
        if response.status_code not in (200, 202):
            raise ProviderAmbiguous(NAME, f"unexpected status {response.status_code}")
        return str(response.headers.get("X-Message-Id") or "")

    @staticmethod
    def _classify(exc: http_errors.HTTPError) -> Exception:
        status = int(exc.status_code)
        detail = _first_error(exc.body)
        if detail:  # SendGrid's message may quote the address it refused
            detail = mask_contacts(detail)
        if status in RETRYABLE:
            if status in (401, 403):
                log.error("SendGrid refused our API key (%d): email paused until fixed", status)
            return ProviderUnavailable(
                NAME, f"sendgrid_{status}", retry_after=retry_after(exc.headers)
            )
        if status in AMBIGUOUS or status >= 500:
            return ProviderAmbiguous(NAME, f"sendgrid_{status}")
        if status < 400:  # a redirect: not processed there, and never followed (our base URL)
            log.error("SendGrid answered %d: check SENDGRID_API_BASE_URL; email paused", status)
            return ProviderUnavailable(NAME, f"sendgrid_{status}")
        reason = f"sendgrid_{status}: {detail}" if detail else f"sendgrid_{status}"
        return ProviderRejected(NAME, reason)

    async def lookup(self, probe: Probe, *, since: datetime) -> Lookup:
        if self._reconcile != "activity":
            return Unverifiable("sendgrid_no_query_api")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._activity, str(probe.command_id))

    def _activity(self, command_id: str) -> Lookup:
        query = f"(unique_args['command_id']=\"{command_id}\")"
        try:
            response = self._client.client.messages.get(
                query_params={"query": query, "limit": 10}, timeout=self._timeout
            )
        except http_errors.HTTPError as exc:
            return Unverifiable(f"activity_{exc.status_code}", retry_later=True)
        except OSError as exc:
            return Unverifiable(f"activity unreachable: {exc!r}", retry_later=True)
        try:
            found = json.loads(response.body or b"{}").get("messages") or []
        except ValueError:
            return Unverifiable("activity answer unparseable", retry_later=True)
        for item in found:
            if isinstance(item, dict) and item.get("msg_id"):
                return Found(str(item["msg_id"]))
        return NotFound()


def _first_error(body: Any) -> str | None:
    try:
        data = json.loads(body) if isinstance(body, (bytes, str)) else body
        return str(data["errors"][0]["message"])[:200]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
