"""`leadctl ingest` (webhooks + website leads) and `leadctl poller` (the polling backup)."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid

import click
from aiohttp import web

from services.common.event_loop import use_fast_event_loop
from services.common.heap import freeze_heap
from services.common.kafka.startup import check_kafka
from services.common.logging import setup_logging
from services.common.observability import add_observability_routes
from services.common.settings import load_settings
from services.ingest.bootstrap import build_poller
from services.ingest.entrypoints.admin import create_admin_app
from services.ingest.entrypoints.http import INGEST, create_app
from services.ingest.settings import IngestSettings

log = logging.getLogger("services.ingest")


def _describe(settings: IngestSettings) -> None:
    if settings.demo_mode:
        log.info(
            "DEMO_MODE: inbound customers outside LEAD_EMAIL_WHITELIST (%d addresses) are dropped",
            len(settings.whitelist),
        )
    if settings.tenant_id is None:
        log.info("TENANT_ID unset: POST /webhooks/shopmonkey/order answers 404")


async def freeze_started_heap(_: web.Application) -> None:
    """Once started, move every object of the start-up (modules, clients, caches) out of the
    collector's reach, so full (gen2) collections of the ingest process pause it far less:
    those pauses go straight into webhook tail latency (bench/ingest/README.md)."""
    freeze_heap()


async def serve(settings: IngestSettings, stop: asyncio.Event) -> None:
    """The public listener (WEBHOOK_HOST:WEBHOOK_PORT) and the admin listener
    (ADMIN_HOST:ADMIN_PORT) on one set of parts, until `stop` is set."""
    public = create_app(settings)
    public.on_startup.append(freeze_started_heap)  # once its cleanup_ctx built the clients
    runner = web.AppRunner(public, access_log=None)
    await runner.setup()
    admin = web.AppRunner(create_admin_app(settings, lambda: public[INGEST]), access_log=None)
    try:
        await admin.setup()
        await web.TCPSite(runner, settings.webhook_host, settings.webhook_port).start()
        await web.TCPSite(admin, settings.admin_host, settings.admin_port).start()
        log.info(
            "ingest listening on %s:%d (public), admin on %s:%d, producing to %s",
            settings.webhook_host,
            settings.webhook_port,
            settings.admin_host,
            settings.admin_port,
            settings.topics.order_events,
        )
        await stop.wait()
    finally:
        await admin.cleanup()
        await runner.cleanup()


async def _serve_until_signalled(settings: IngestSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(settings, stop)


@click.command("ingest")
@click.option("--port", type=int, default=None, help="Public listen port (WEBHOOK_PORT, 3000).")
@click.option("--host", default=None, help="Public listen address (WEBHOOK_HOST).")
@click.option("--admin-port", type=int, default=None, help="Admin port (ADMIN_PORT, 3090).")
def ingest(port: int | None, host: str | None, admin_port: int | None) -> None:
    """Receive Shopmonkey webhooks and website leads into Kafka (durable, idempotent); serve the
    operators' dashboard and metrics on the admin listener."""
    overrides: dict[str, object] = {}
    if port:
        overrides["webhook_port"] = port
    if host:
        overrides["webhook_host"] = host
    if admin_port:
        overrides["admin_port"] = admin_port
    settings = load_settings(IngestSettings, **overrides)
    setup_logging("ingest", settings.log_level)
    _describe(settings)
    check_kafka(settings)
    use_fast_event_loop()
    asyncio.run(_serve_until_signalled(settings))


async def run_poller(
    settings: IngestSettings, *, once: bool = False, only: frozenset[uuid.UUID] | None = None
) -> None:
    """Poll until SIGTERM/SIGINT, with /healthz, /readyz and /metrics on
    ADMIN_HOST:POLLER_PORT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with build_poller(settings, only=only) as parts:
        if once:
            results = await parts.poller.poll_all()
            failed = sum(1 for r in results if r is None)
            log.info("one cycle: %d companies, %d failed", len(results), failed)
            return
        app = web.Application()
        add_observability_routes(app, service="poller", ready=parts.ready)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # health and metrics are for operators and Prometheus: the admin host, never the public
        await web.TCPSite(runner, settings.admin_host, settings.poller_port).start()
        log.info(
            "poller every %.0fs (overlap %.0fs), health on :%d",
            settings.poll_interval_seconds,
            settings.poll_overlap_seconds,
            settings.poller_port,
        )
        try:
            await parts.poller.run(stop)
        finally:
            await runner.cleanup()


@click.command("poller")
@click.option("--once", is_flag=True, help="Run one poll cycle over every company, then exit.")
@click.option("--port", type=int, default=None, help="Health/metrics port (POLLER_PORT, 3004).")
@click.option(
    "--tenant",
    "tenants",
    type=click.UUID,
    multiple=True,
    help="Poll only the company of this tenant, for all its locations (repeat).",
)
def poller(once: bool, port: int | None, tenants: tuple[uuid.UUID, ...]) -> None:
    """Poll each Shopmonkey company once per interval for changed orders and customers, routed
    to its locations (the webhook backup)."""
    settings = load_settings(IngestSettings, **({"poller_port": port} if port else {}))
    setup_logging("poller", settings.log_level)
    _describe(settings)
    check_kafka(settings)
    use_fast_event_loop()
    asyncio.run(run_poller(settings, once=once, only=frozenset(tenants) or None))
