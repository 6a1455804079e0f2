"""Message rendering with Jinja2 templates packaged under `services/outbound/templates/`.

Email: `email/<name>.subject.j2`, `.txt.j2`, `.html.j2` (HTML autoescaped); SMS:
`sms/<name>.txt.j2`. Whatever a template says, every message carries the chat link
`<CHAT_BASE_URL>/<leadId>`, and every email the location's postal address and unsubscribe link
(appended when a template forgot them).
"""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
import markupsafe

from schemas.base import Channel
from schemas.events import TouchPointCommand
from services.common.domain.signed_links import Signer, unsubscribe_token
from services.common.phones import normalize_phone
from services.common.whitelist import normalize_email
from services.outbound.domain.model import EmailMessage, OutboundMessage, SmsMessage, TenantProfile
from services.outbound.errors import TemplateError

TEMPLATE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
SMS_MAX_CHARS = 1600  # Twilio's Body limit


def template_files(channel: Channel, name: str) -> tuple[str, ...]:
    """The files template `name` needs on `channel` (what `JinjaRenderer.render` loads)."""
    if channel is Channel.SMS:
        return (f"sms/{name}.txt.j2",)
    return tuple(f"email/{name}.{part}.j2" for part in ("subject", "txt", "html"))


def packaged_templates() -> frozenset[str]:
    """Every template file packaged under `services/outbound/templates/`."""
    return frozenset(jinja2.PackageLoader("services.outbound", "templates").list_templates())


def _clock(t: time) -> str:
    return t.strftime("%I:%M %p").lstrip("0")


def hours_lines(hours: dict[int, tuple[time, time]]) -> list[str]:
    """`["Mon 8:00 AM–6:00 PM", …, "Sun closed"]` (empty when the location set no hours)."""
    if not hours:
        return []
    lines = []
    for day in range(7):
        if day in hours:
            lines.append(f"{DAYS[day]} {_clock(hours[day][0])}–{_clock(hours[day][1])}")
        else:
            lines.append(f"{DAYS[day]} closed")
    return lines


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def template_context(
    command: TouchPointCommand, tenant: TenantProfile, *, chat_link: str, unsubscribe_url: str
) -> dict[str, Any]:
    ctx = command.context
    first = _text(command.recipient.first_name)
    services = ctx.get("services")
    return {
        "lead": {
            "id": str(command.lead_id),
            "first_name": first,
            "last_name": _text(command.recipient.last_name),
            "greeting_name": first or "there",
        },
        "vehicle": _text(ctx.get("vehicle")),
        "services": [s.strip() for s in services if isinstance(s, str) and s.strip()]
        if isinstance(services, list)
        else [],
        "service_of_interest": _text(ctx.get("service_of_interest")),
        "order_number": _text(ctx.get("order_number")),
        "location": {
            "name": tenant.name,
            "address": tenant.postal_address,
            "phone": tenant.phone,
            "hours": hours_lines(tenant.hours),
            "services": list(tenant.catalog),
        },
        "chat_link": chat_link,
        "unsubscribe_url": unsubscribe_url,
        "step_index": command.step_index,
        **campaign_context(command, tenant, chat_link=chat_link),
    }


def campaign_context(
    command: TouchPointCommand, tenant: TenantProfile, *, chat_link: str
) -> dict[str, Any]:
    """What a campaign's templates read: the declined work (names, total in dollars), the
    appointment's time in the location's zone, the review link (the chat link when the
    location set none). Every key is present, empty for other campaigns."""
    ctx = command.context
    names = ctx.get("declined_services")
    cents = ctx.get("declined_cents")
    appointment = None
    raw = ctx.get("appointment_at")
    if isinstance(raw, str):
        try:
            at = datetime.fromisoformat(raw)
        except ValueError:
            at = None
        if at is not None and at.tzinfo is not None:
            local = at.astimezone(ZoneInfo(tenant.timezone))
            appointment = (
                f"{DAYS[local.weekday()]} {local:%b} {local.day} at {_clock(local.time())}"
            )
    return {
        "campaign": _text(ctx.get("campaign")),
        "declined_services": [n.strip() for n in names if isinstance(n, str) and n.strip()]
        if isinstance(names, list)
        else [],
        "declined_total": f"${cents / 100:,.2f}"
        if isinstance(cents, int) and not isinstance(cents, bool) and cents > 0
        else None,
        "appointment_at": appointment,
        "review_url": tenant.review_url or chat_link,
    }


class JinjaRenderer:
    """`Renderer`: builds the EmailMessage / SmsMessage for a command."""

    def __init__(
        self,
        *,
        chat_base_url: str,
        from_email: str,
        from_name: str | None,
        unsubscribe_base_url: str,
        unsubscribe_signer: Signer,
        loader: jinja2.BaseLoader | None = None,
    ) -> None:
        self._chat_base = chat_base_url.rstrip("/")
        self._from_email = from_email
        self._from_name = from_name
        self._unsub_base = unsubscribe_base_url.rstrip("/")
        self._unsub_signer = unsubscribe_signer
        self._env = jinja2.Environment(
            loader=loader or jinja2.PackageLoader("services.outbound", "templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            auto_reload=False,  # templates ship with the code: no stat() per render
        )

    def chat_link(self, command: TouchPointCommand) -> str:
        return f"{self._chat_base}/{command.lead_id}"

    def unsubscribe_link(self, command: TouchPointCommand) -> str:
        """`<UNSUBSCRIBE_BASE_URL>/<token>`: signed, binding the tenant, the lead, the channel
        and the address this email goes to (services.common.domain.signed_links)."""
        token = unsubscribe_token(
            self._unsub_signer,
            tenant_id=command.tenant_id,
            lead_id=command.lead_id,
            channel=Channel.EMAIL,
            contact=normalize_email(command.recipient.email) or "",
        )
        return f"{self._unsub_base}/{token}"

    def _render(self, path: str, ctx: dict[str, Any]) -> str:
        try:
            return self._env.get_template(path).render(ctx).strip()
        except jinja2.TemplateNotFound:
            raise TemplateError(f"unknown_template:{path}") from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"template_error:{path}: {exc}") from None
        except Exception as exc:  # a filter or an expression failed: the template's fault too
            raise TemplateError(f"template_error:{path}: {type(exc).__name__}: {exc}") from None

    def render(
        self,
        command: TouchPointCommand,
        tenant: TenantProfile,
        *,
        now: datetime,
        validity_seconds: int,
    ) -> OutboundMessage:
        name = command.template
        if not TEMPLATE_NAME.match(name):
            raise TemplateError(f"unknown_template:{name[:64]}")
        chat = self.chat_link(command)
        unsubscribe = ""
        if command.channel is Channel.EMAIL:
            unsubscribe = self.unsubscribe_link(command)
        ctx = template_context(command, tenant, chat_link=chat, unsubscribe_url=unsubscribe)
        if command.channel is Channel.SMS:
            body = self._render(f"sms/{name}.txt.j2", ctx)
            if chat not in body:
                body = f"{body}\n{chat}"
            if len(body) > SMS_MAX_CHARS:
                raise TemplateError(f"sms_too_long:{len(body)} chars")
            return SmsMessage(
                command_id=command.command_id,
                tenant_id=command.tenant_id,
                lead_id=command.lead_id,
                to=normalize_phone(command.recipient.phone) or "",
                body=body,
                validity_seconds=validity_seconds,
                chat_link=chat,
            )
        subject = " ".join(self._render(f"email/{name}.subject.j2", ctx).split())
        text = self._render(f"email/{name}.txt.j2", ctx)
        html = self._render(f"email/{name}.html.j2", ctx)
        address = tenant.postal_address or ""
        if chat not in text:
            text = f"{text}\n\n{chat}"
        if address not in text:
            text = f"{text}\n\n{tenant.name}, {address}"
        esc = markupsafe.escape
        if chat not in html:
            html += f'\n<p><a href="{esc(chat)}">{esc(chat)}</a></p>'
        if str(esc(address)) not in html:
            html += f"\n<p>{esc(tenant.name)}, {esc(address)}</p>"
        return EmailMessage(
            command_id=command.command_id,
            tenant_id=command.tenant_id,
            lead_id=command.lead_id,
            to=normalize_email(command.recipient.email) or "",
            from_email=self._from_email,
            from_name=self._from_name or tenant.name,
            subject=subject or f"A message from {tenant.name}",
            text=text,
            html=html,
            unsubscribe_url=unsubscribe,
            chat_link=chat,
        )
