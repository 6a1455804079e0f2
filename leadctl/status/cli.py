"""`leadctl status`: what runs and how it is doing, in one screen (or `--json`).

Health of each service (`/healthz`, `/readyz` on its configured port), consumer lag per group
and partition, dead-letter counts, leads by state, touch points of the last hours by status and
reason, and recent errors (poller cursors, failed/unknown sends, messages the providers reported
undelivered). A section whose source does not answer says so; the others are still shown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from leadctl.status.database import database_facts
from leadctl.status.health import probe_services, service_ports
from leadctl.status.kafka import kafka_facts
from leadctl.status.render import print_status
from services.common.errors import ConfigError
from services.common.kafka.startup import verify_connection
from services.common.settings import CommonSettings, load_settings


async def gather_status(
    settings: CommonSettings,
    *,
    host: str,
    groups: Sequence[str],
    hours: float,
    probe_seconds: float,
    kafka_seconds: float = 8.0,
) -> dict[str, Any]:
    services, kafka, db = await asyncio.gather(
        probe_services(service_ports(), host, probe_seconds),
        kafka_facts(settings, groups, kafka_seconds),
        database_facts(settings, hours, **_ingest_view()),
    )
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "window_hours": hours,
        "services": services,
        **kafka,
        **db,
    }


def _ingest_view() -> dict[str, Any]:
    """The poll interval and the SHOPMONKEY_API_KEY location as ingest's settings give them
    (defaults when they are broken: the services section names the variable)."""
    from services.ingest.settings import IngestSettings

    try:
        ingest = load_settings(IngestSettings)
    except ConfigError:
        return {}
    key = ingest.shopmonkey_api_key
    return {
        "poll_interval": timedelta(seconds=ingest.poll_interval_seconds),
        "default_key_tenant": ingest.tenant_id if key and key.get_secret_value().strip() else None,
    }


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--host", default="localhost", show_default=True, help="Where the services listen.")
@click.option(
    "--group",
    "groups",
    multiple=True,
    help="Only this consumer group (repeatable; default: every group on our topics).",
)
@click.option("--hours", type=float, default=24.0, show_default=True, help="Touch-point window.")
@click.option(
    "--timeout", type=float, default=0.5, show_default=True, help="Per health probe (loopback)."
)
@click.option(
    "--kafka-timeout", type=float, default=8.0, show_default=True, help="Per Kafka admin call."
)
def status(
    as_json: bool,
    host: str,
    groups: tuple[str, ...],
    hours: float,
    timeout: float,
    kafka_timeout: float,
) -> None:
    """Health of each service, consumer lag, DLQs, leads by state, touch points, recent errors."""
    settings = load_settings(CommonSettings)
    verify_connection(settings.kafka)  # refused settings: an error naming them, not a hang
    report = asyncio.run(
        gather_status(
            settings,
            host=host,
            groups=groups,
            hours=hours,
            probe_seconds=timeout,
            kafka_seconds=kafka_timeout,
        )
    )
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        print_status(report)
