"""`leadctl outbound`: the outbound service (safety gate, SendGrid/Twilio, send ledger)."""

from __future__ import annotations

import asyncio
import logging
import signal

import click
from aiohttp import web

from services.common.event_loop import use_fast_event_loop
from services.common.heap import freeze_heap
from services.common.kafka.startup import check_kafka
from services.common.logging import setup_logging
from services.common.settings import load_settings
from services.outbound.bootstrap import build
from services.outbound.entrypoints.http import create_app
from services.outbound.settings import OutboundSettings

log = logging.getLogger("services.outbound")


async def serve(settings: OutboundSettings) -> None:
    """Run until SIGTERM/SIGINT: consumer, sweeper and the health/metrics endpoint."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with build(settings) as outbound:
        runner = web.AppRunner(create_app(outbound), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, settings.outbound_host, settings.outbound_port).start()
        freeze_heap()  # before the first command (bench/latency/README.md)
        log.info(
            "outbound listening on %s:%d, consuming %s as group %s",
            settings.outbound_host,
            settings.outbound_port,
            settings.topics.touchpoint_commands,
            settings.outbound_group_id,
        )
        try:
            await outbound.run(stop)
        finally:
            await runner.cleanup()


def describe(settings: OutboundSettings) -> None:
    whitelist = settings.whitelist
    if not whitelist:
        log.warning("LEAD_EMAIL_WHITELIST is empty: ALL outbound (email and SMS) is disabled")
    else:
        log.info("outbound whitelist: %d address(es); nothing else is ever sent", len(whitelist))
    phones = settings.phone_whitelist
    if not phones:
        log.warning("LEAD_PHONE_WHITELIST is empty: no SMS is sent (email is not affected)")
    else:
        log.info(
            "SMS only to the %d number(s) of LEAD_PHONE_WHITELIST, in %s",
            len(phones),
            ", ".join(sorted(settings.sms_regions)) or "no region",
        )
    log.info(
        "email %s, SMS %s",
        "enabled (SendGrid)" if settings.email_configured else "DISABLED (no SendGrid key)",
        "enabled (Twilio)" if settings.sms_configured else "DISABLED (Twilio not configured)",
    )
    if settings.demo_mode:
        log.info("DEMO_MODE=true does not loosen the outbound gate")


@click.command("outbound")
@click.option("--port", type=int, default=None, help="Health/metrics port (OUTBOUND_PORT).")
def outbound(port: int | None) -> None:
    """Send touch points through the fail-closed safety gate, each at most once."""
    settings = load_settings(OutboundSettings, **({"outbound_port": port} if port else {}))
    setup_logging("outbound", settings.log_level)
    describe(settings)
    check_kafka(settings)
    use_fast_event_loop()
    asyncio.run(serve(settings))
