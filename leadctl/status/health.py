"""Each service's health, asked over HTTP: `/healthz`, then `/readyz` with its checks, on the
port its own settings give (a broken setting is reported in place of the probe).

Every service is asked at once, each with a short bound, and `localhost` is asked as 127.0.0.1:
the services listen on IPv4, and a resolver that answers ::1 first costs a refused connection
and a retry per probe (about a second each on some hosts)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from services.common.errors import ConfigError
from services.common.settings import load_settings


def service_ports() -> dict[str, int | str]:
    """Each service's port from its own settings (a broken setting is reported, not fatal)."""
    from services.ingest.settings import IngestSettings
    from services.outbound.settings import OutboundSettings
    from services.sequencer.settings import SequencerSettings

    ports: dict[str, int | str] = {}
    for name, cls, field in (
        ("ingest", IngestSettings, "webhook_port"),
        ("poller", IngestSettings, "poller_port"),
        ("sequencer", SequencerSettings, "sequencer_port"),
        ("outbound", OutboundSettings, "outbound_port"),
    ):
        try:
            ports[name] = int(getattr(load_settings(cls), field))
        except ConfigError as exc:
            ports[name] = str(exc)
    return ports


def loopback(host: str) -> str:
    """The address to ask: IPv4 loopback where the name says localhost, else `host`."""
    return "127.0.0.1" if host.strip().lower().rstrip(".") == "localhost" else host


async def probe_services(
    ports: Mapping[str, int | str], host: str, probe_seconds: float
) -> list[dict[str, Any]]:
    """Every service's health, asked in parallel (a slow one costs its own bound only)."""
    address = loopback(host)
    return list(
        await asyncio.gather(
            *(probe_service(name, address, port, probe_seconds) for name, port in ports.items())
        )
    )


async def probe_service(
    name: str, host: str, port: int | str, probe_seconds: float
) -> dict[str, Any]:
    import aiohttp

    if isinstance(port, str):
        return {"service": name, "url": None, "up": False, "ready": None, "error": port}
    base = f"http://{host}:{port}"
    out: dict[str, Any] = {"service": name, "url": base, "up": False, "ready": None}
    started = time.perf_counter()
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=probe_seconds)
        ) as http:
            async with http.get(f"{base}/healthz") as res:
                out["up"] = res.status == 200
                out["ms"] = round((time.perf_counter() - started) * 1000, 1)
                if not out["up"]:
                    out["error"] = f"/healthz answered {res.status}"
                    return out
            async with http.get(f"{base}/readyz") as res:
                body = await res.json(content_type=None) if res.status in (200, 503) else {}
                out["ready"] = res.status == 200
                out["checks"] = body.get("checks", {}) if isinstance(body, dict) else {}
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        out["error"] = "not listening (connection refused)" if refused else str(exc.os_error)
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        out["error"] = str(exc) or exc.__class__.__name__
    return out
