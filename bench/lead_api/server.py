"""The real ingest app (create_app) on a loopback port, for bench/lead_api/run.py.

uv run python bench/lead_api/server.py <port>     (settings from the environment)
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from services.common.settings import load_settings  # noqa: E402
from services.ingest.entrypoints.http import create_app  # noqa: E402
from services.ingest.settings import IngestSettings  # noqa: E402


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    port = int(sys.argv[1])
    web.run_app(
        create_app(load_settings(IngestSettings)),
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
    )


if __name__ == "__main__":
    main()
