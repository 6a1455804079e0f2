"""`leadctl templates preview --template T --lead L [--channel email|sms]`: exactly what
outbound would send the lead (subject, text and HTML of the email with its footer, chat link
and signed unsubscribe link; the SMS body with its chat link and how many segments it takes).
Renders only: nothing is claimed, recorded or sent."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import click

from leadctl.templates.preview import (
    PreviewError,
    campaign_of,
    channels_of,
    read_profile,
    render,
)
from leadctl.templates.segments import sms_segments
from schemas.base import Channel
from services.common.lead_report import masker_for
from services.common.settings import load_settings
from services.outbound.domain.model import EmailMessage, SmsMessage, TenantProfile
from services.sequencer.domain.campaigns import Campaign


@click.group("templates")
def templates() -> None:
    """Message templates (services/outbound/templates): preview them for a lead."""


@templates.command("preview")
@click.option("--template", required=True, help="Template name, e.g. nurture_email_welcome.")
@click.option("--lead", "lead_id", type=click.UUID, required=True, help="Lead id.")
@click.option(
    "--channel",
    type=click.Choice([c.value for c in Channel]),
    default=None,
    help="Only this channel (default: each the template exists for).",
)
@click.option(
    "--campaign",
    type=click.Choice(["nurture", *(c.value for c in Campaign)]),
    default=None,
    help="As a step of this campaign (default: the one whose default plan names the template).",
)
def preview(template: str, lead_id: uuid.UUID, channel: str | None, campaign: str | None) -> None:
    """Render a template for a lead as outbound would send it (never sends)."""
    from leadctl.leads.read_model import read_database
    from services.outbound.bootstrap import build_renderer
    from services.outbound.settings import OutboundSettings

    settings = load_settings(OutboundSettings)
    try:
        channels = channels_of(template, Channel(channel) if channel else None)
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from None

    async def read() -> tuple[dict[str, Any] | None, TenantProfile | None]:
        lead, _, _ = await read_database(settings, lead_id, None)
        if lead is None:
            return None, None
        return lead, await read_profile(settings, lead["tenant_id"])

    lead, profile = asyncio.run(read())
    if lead is None:
        raise click.ClickException(f"no lead {lead_id} in the read model (leads)")
    if profile is None:
        raise click.ClickException(f"lead {lead_id}: its location {lead['tenant_id']} is unknown")
    now = datetime.now(UTC)
    run = campaign_of(template) if campaign is None else campaign
    run = None if run == "nurture" else run
    try:
        messages = render(build_renderer(settings), lead, profile, template, channels, now, run)
    except PreviewError as exc:
        raise click.ClickException(str(exc)) from None
    mask = masker_for(settings.whitelist, lead.get("email"))
    click.echo(
        f"preview of {template!r} for lead {lead_id} ({lead.get('tenant_name')}), as a step of "
        f"{'the ' + run + ' campaign' if run else 'the nurture plan'}; nothing is sent"
    )
    if run == Campaign.DECLINED.value:
        click.echo("(declined work is not in the read model: the lead's services stand in)")
    if run == Campaign.APPOINTMENT.value:
        click.echo("(appointments are not in the read model: one tomorrow at this hour stands in)")
    for message in messages:
        click.echo("")
        if isinstance(message, EmailMessage):
            click.echo("=== email ===")
            click.echo(f"To: {mask.email(message.to) or '(no email address)'}")
            click.echo(f"From: {message.from_name} <{message.from_email}>")
            click.echo(f"Subject: {message.subject}")
            click.echo(f"List-Unsubscribe: <{message.unsubscribe_url}>")
            click.echo("--- text ---")
            click.echo(message.text)
            click.echo("--- html ---")
            click.echo(message.html)
        elif isinstance(message, SmsMessage):
            click.echo("=== sms ===")
            click.echo(f"To: {mask.phone(message.to) or '(no phone number)'}")
            seg = sms_segments(message.body)
            line = (
                f"Segments: {seg.count} ({seg.encoding}, {seg.units} "
                f"{'characters' if seg.encoding == 'GSM-7' else 'UTF-16 units'})"
            )
            if seg.count > 1:
                why = f"over {seg.single_limit}: {seg.count} parts of at most {seg.part_limit}"
                if seg.non_gsm:
                    why += f"; UCS-2 because of {' '.join(repr(c) for c in seg.non_gsm)}"
                click.secho(f"warning: more than one SMS segment: {line} {why}", fg="yellow")
            else:
                click.echo(line)
            click.echo("--- body ---")
            click.echo(message.body)
