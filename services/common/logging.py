"""Logging set-up shared by the services: JSON lines (or readable text on a terminal), context
ids (tenant, lead, command) from `extra=`, LOG_LEVEL honoured, secrets never formatted."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

from services.common.errors import ConfigError

CONTEXT_FIELDS = ("service", "tenant_id", "lead_id", "command_id", "event_id")


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in CONTEXT_FIELDS[1:]:
            value = getattr(record, field, None)
            if value is not None:
                payload[field] = str(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__(
            "%(asctime)s %(levelname)-5s " + f"[{service}] " + "%(name)s: %(message)s",
            datefmt="%H:%M:%S",
        )

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        ids = " ".join(
            f"{f}={getattr(record, f)}"
            for f in CONTEXT_FIELDS[1:]
            if getattr(record, f, None) is not None
        )
        return f"{base} ({ids})" if ids else base


class MalformedRequestsAtInfo(logging.Filter):
    """aiohttp logs a request it cannot even parse (a header line over 8190 bytes, bad
    framing) as an ERROR with a traceback. That is a stranger's mistake, answered 400 by
    aiohttp itself, not ours: it is logged at info, one line, so it pages nobody."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.levelno >= logging.ERROR:
            from aiohttp.http_exceptions import HttpProcessingError

            exc = record.exc_info[1]
            if isinstance(exc, HttpProcessingError):
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg = f"{record.getMessage()}: {type(exc).__name__} {exc.code}"
                record.args, record.exc_info, record.exc_text = None, None, None
        return True


def setup_logging(service: str, level: str = "info", *, json_output: bool | None = None) -> None:
    """Configure the root logger once per process. Without `json_output`, LOG_FORMAT decides
    (`json`, `text`, or `auto`: text on a terminal, JSON lines otherwise; `leadctl run` asks
    its children for text when it prints to a terminal)."""
    if json_output is None:
        fmt = os.environ.get("LOG_FORMAT", "auto").strip().lower() or "auto"
        if fmt not in ("auto", "json", "text"):
            raise ConfigError("LOG_FORMAT: must be auto, json or text")
        json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_output else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in (
        "aiokafka",
        "kafka",
        "faust",
        "mode",
        "urllib3",
        "aiohttp.access",
        "sqlalchemy.engine",
        "twilio.http_client",
    ):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    malformed_requests_at_info()


def malformed_requests_at_info() -> None:
    """Install `MalformedRequestsAtInfo` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestsAtInfo) for f in server.filters):
        server.addFilter(MalformedRequestsAtInfo())
