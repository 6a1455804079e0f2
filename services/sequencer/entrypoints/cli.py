"""`leadctl sequencer`: the Faust worker (lead state, nurture plans, timers), its /healthz and
/metrics, and the lead-changes → `leads` projection."""

from __future__ import annotations

import logging

import click

from services.common.event_loop import use_fast_event_loop
from services.common.kafka.startup import check_kafka
from services.common.logging import setup_logging
from services.common.settings import load_settings
from services.sequencer.bootstrap import build
from services.sequencer.entrypoints.faust_app import declare_internal_topics, internal_topics
from services.sequencer.settings import SequencerSettings

log = logging.getLogger("services.sequencer")


@click.command("sequencer")
@click.option("--port", type=int, default=None, help="Health/metrics port (SEQUENCER_PORT).")
@click.option(
    "--projection/--no-projection",
    default=None,
    help="Also run the lead-changes → leads projection (SEQUENCER_PROJECTION, default on).",
)
def sequencer(port: int | None, projection: bool | None) -> None:
    """Keep every lead's state and emit its touch points when they are due."""
    overrides = {"sequencer_port": port} if port is not None else {}
    settings = load_settings(SequencerSettings, **overrides)
    setup_logging("sequencer", settings.log_level)
    log.info(
        "sequencer %s: %d partitions, store %s, ticks every %.0f s, health on %s:%d",
        settings.app_id,
        settings.kafka_partitions,
        settings.sequencer_store,
        settings.touchpoint_tick_seconds,
        settings.sequencer_host,
        settings.sequencer_port,
    )
    check_kafka(settings, internal_topics(settings))
    declare_internal_topics(settings)
    use_fast_event_loop()
    build(settings, projection=projection).run()
