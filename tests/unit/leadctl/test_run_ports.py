"""Ports that do not collide: the poller's default is not the chat API's 3001, no two default
ports of a run are the same, and `leadctl run` checks every port it needs before it starts
anything, naming the taken one and the variable that moves it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from leadctl.main import cli
from leadctl.run.demo import DEFAULT_PORTS, PORT_VARS, plan
from leadctl.run.ports import Listener, service_listeners, taken
from services.ingest.settings import IngestSettings
from services.outbound.settings import OutboundSettings
from services.sequencer.settings import SequencerSettings
from tests.conftest import free_port

#: The seed's chat API (it loads lead context there); a shop may run both on one host.
CHAT_API_PORT = 3001
SERVICE_PORTS = {
    "WEBHOOK_PORT": (IngestSettings, "webhook_port"),
    "ADMIN_PORT": (IngestSettings, "admin_port"),
    "POLLER_PORT": (IngestSettings, "poller_port"),
    "SEQUENCER_PORT": (SequencerSettings, "sequencer_port"),
    "OUTBOUND_PORT": (OutboundSettings, "outbound_port"),
}


@pytest.fixture
def held() -> Iterator[int]:
    """A loopback port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run_ports(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Free ports for every listener of a run, in the environment."""
    chosen = {var: free_port() for var in [*SERVICE_PORTS, *PORT_VARS.values()]}
    for var, port in chosen.items():
        monkeypatch.setenv(var, str(port))
    for var in ("SHOPMONKEY_API_KEY", "SENDGRID_API_KEY", "TWILIO_ACCOUNT_SID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("DEMO_OPERATOR_PASSWORD", "not-used-here")
    return chosen


def test_the_pollers_default_port_is_not_the_chat_apis_and_no_defaults_collide() -> None:
    defaults = {var: cls.model_fields[f].default for var, (cls, f) in SERVICE_PORTS.items()}
    defaults |= {PORT_VARS[name]: port for name, port in DEFAULT_PORTS.items()}
    assert defaults["POLLER_PORT"] != CHAT_API_PORT
    assert CHAT_API_PORT not in defaults.values()
    assert len(set(defaults.values())) == len(defaults), defaults


def test_a_taken_port_is_named_with_its_variable(held: int) -> None:
    free = Listener("sequencer", "SEQUENCER_PORT", "127.0.0.1", free_port())
    busy = Listener("poller", "POLLER_PORT", "127.0.0.1", held)
    [problem] = taken([free, busy])
    assert f"port {held} (POLLER_PORT, poller) is taken" in problem
    assert "set POLLER_PORT to a free port" in problem


def test_one_port_wanted_twice_is_named() -> None:
    port = free_port()
    [problem] = taken(
        [
            Listener("poller", "POLLER_PORT", "127.0.0.1", port),
            Listener("sendgrid", "FAKE_SENDGRID_PORT", "127.0.0.1", port),
        ]
    )
    assert "POLLER_PORT" in problem and "FAKE_SENDGRID_PORT" in problem


def test_the_run_checks_every_service_and_stand_in_port(monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = run_ports(monkeypatch)
    the_plan = plan(
        {k: str(v) for k, v in chosen.items()}, available=lambda _: True
    )  # the stand-ins
    names = {p.name for p in the_plan.processes}
    listeners = the_plan.listeners + service_listeners(names)
    assert {(x.variable, x.port) for x in listeners} == set(chosen.items())
    assert taken(listeners) == []


@pytest.mark.parametrize("variable", ["POLLER_PORT", "FAKE_TWILIO_PORT", "ADMIN_PORT"])
def test_leadctl_run_starts_nothing_when_a_port_is_taken(
    monkeypatch: pytest.MonkeyPatch, held: int, variable: str
) -> None:
    run_ports(monkeypatch)
    monkeypatch.setenv(variable, str(held))
    result = CliRunner().invoke(cli, ["run"])
    assert result.exit_code == 1, result.output
    assert f"port {held} ({variable}" in result.output
    assert f"set {variable} to a free port" in result.output
    assert "nothing started" in result.output
    assert "started " not in result.output.replace("nothing started", "")
