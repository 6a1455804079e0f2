"""The real ingest (`leadctl ingest`'s `serve`: the public listener on <port>, the admin one with
/metrics on <admin port>), for bench/lead_api/run.py.

uv run python bench/lead_api/server.py <port> <admin port>     (settings from the environment)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from services.common.settings import load_settings  # noqa: E402
from services.ingest.entrypoints.cli import serve  # noqa: E402
from services.ingest.settings import IngestSettings  # noqa: E402


async def run(port: int, admin_port: int) -> None:
    settings = load_settings(
        IngestSettings, webhook_host="127.0.0.1", webhook_port=port, admin_port=admin_port
    )
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await serve(settings, stop)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(int(sys.argv[1]), int(sys.argv[2])))


if __name__ == "__main__":
    main()
