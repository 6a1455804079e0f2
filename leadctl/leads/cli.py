"""`leadctl leads show ID`: one lead's story — its read-model row, its touch points (decision,
reason, provider ids, delivery) and its events from Kafka, in time order.

Kafka holds what happened (DESIGN §1); a lead's records all sit on its tenant's partition of
each topic (key = tenant id, murmur2 like aiokafka/Faust), so only that partition is read, from
`--since` to its end, and filtered by lead id. Customer contacts are masked unless the lead's
email is on LEAD_EMAIL_WHITELIST.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import click

from leadctl.leads.read_model import read_database
from leadctl.leads.render import print_report
from leadctl.times import parse_time
from services.common.kafka.lead_scan import DEFAULT_MAX_SCAN, KafkaScan, scan_kafka
from services.common.kafka.startup import verify_connection
from services.common.lead_report import json_report, masker_for, newest_in_order
from services.common.settings import CommonSettings, load_settings


@click.group("leads")
def leads() -> None:
    """Inspect leads: read model, touch points and their events in Kafka."""


@leads.command("show")
@click.argument("lead_id", type=click.UUID)
@click.option("--since", default="30d", show_default=True, help="Read Kafka from (7d, 12h, ISO).")
@click.option("--limit", type=int, default=200, show_default=True, help="Newest timeline rows.")
@click.option(
    "--tenant", type=click.UUID, default=None, help="Tenant, if the lead is not projected."
)
@click.option(
    "--max-scan",
    type=int,
    default=DEFAULT_MAX_SCAN,
    show_default=True,
    help="Records read per topic at most.",
)
@click.option("--no-kafka", is_flag=True, help="Only the database.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def show(
    lead_id: uuid.UUID,
    since: str,
    limit: int,
    tenant: uuid.UUID | None,
    max_scan: int,
    no_kafka: bool,
    as_json: bool,
) -> None:
    """A lead's timeline: state, touch points with decisions and delivery, and its events."""
    settings = load_settings(CommonSettings)
    if not no_kafka:
        verify_connection(settings.kafka)  # refused settings: an error naming them
    start = parse_time(since)
    lead, tenant_id, jobs = asyncio.run(read_database(settings, lead_id, tenant))
    if lead is None and tenant_id is None:
        raise click.ClickException(
            f"lead {lead_id} is neither in the read model nor in the send ledger; "
            "pass --tenant to search Kafka anyway"
        )
    assert tenant_id is not None
    scan = KafkaScan()
    if not no_kafka:
        scan = scan_kafka(
            settings, lead_id=lead_id, tenant_id=tenant_id, since=start, max_scan=max_scan
        )
    timeline = newest_in_order(scan, limit)
    mask = masker_for(settings.whitelist, (lead or {}).get("email"))
    if as_json:
        report = json_report(
            lead_id=lead_id,
            tenant_id=tenant_id,
            lead=lead,
            jobs=jobs,
            scan=scan,
            timeline=timeline,
            since=start,
            mask=mask,
        )
        click.echo(json.dumps(report, indent=2, default=str))
        return
    print_report(
        lead_id=lead_id,
        lead=lead,
        jobs=jobs,
        scan=None if no_kafka else scan,
        timeline=timeline,
        since=start,
        mask=mask,
    )
