"""The ports `leadctl run` needs, checked before it starts anything: each service's listener
(from the service's own settings) and each stand-in's, so a port another program holds (the
chat API on 3001, a second `make run`) is named with the variable that moves it, instead of
one child dying with a bind error after the others started."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from services.common.errors import ConfigError
from services.common.settings import load_settings


@dataclass(frozen=True)
class Listener:
    """One port a process of the run binds."""

    process: str
    variable: str
    host: str
    port: int

    def taken_message(self) -> str:
        return (
            f"port {self.port} ({self.variable}, {self.process}) is taken on {self.host}: "
            f"stop what listens there, or set {self.variable} to a free port"
        )


def service_listeners(names: set[str]) -> list[Listener]:
    """The listeners of the services in `names`, as their settings give them (a service whose
    settings are broken is left out: it fails at start naming the variable)."""
    from services.ingest.settings import IngestSettings
    from services.outbound.settings import OutboundSettings
    from services.sequencer.settings import SequencerSettings

    table = (
        ("ingest", IngestSettings, "webhook_host", "webhook_port", "WEBHOOK_PORT"),
        ("ingest", IngestSettings, "admin_host", "admin_port", "ADMIN_PORT"),
        ("poller", IngestSettings, "admin_host", "poller_port", "POLLER_PORT"),
        ("sequencer", SequencerSettings, "sequencer_host", "sequencer_port", "SEQUENCER_PORT"),
        ("outbound", OutboundSettings, "outbound_host", "outbound_port", "OUTBOUND_PORT"),
    )
    out: list[Listener] = []
    for process, cls, host, port, variable in table:
        if process not in names:
            continue
        try:
            settings = load_settings(cls)
        except ConfigError:
            continue
        out.append(Listener(process, variable, getattr(settings, host), getattr(settings, port)))
    return out


def is_taken(listener: Listener) -> bool:
    """Whether binding the listener's port fails because something holds it (as the service
    binds it: SO_REUSEADDR, so a connection in TIME_WAIT does not count)."""
    family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((listener.host, listener.port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def taken(listeners: list[Listener]) -> list[str]:
    """What is wrong with the run's ports, one line each: taken ones, and one port wanted by
    two processes."""
    problems: list[str] = []
    seen: dict[int, Listener] = {}
    for listener in listeners:
        first = seen.setdefault(listener.port, listener)
        if first is not listener:
            problems.append(
                f"port {listener.port} is wanted by {first.process} ({first.variable}) and by "
                f"{listener.process} ({listener.variable}): set one of them to a free port"
            )
        elif is_taken(listener):
            problems.append(listener.taken_message())
    return problems
