"""`leadctl simulate …`: the outside world as real HTTP peers (Shopmonkey, SendGrid, Twilio)."""

from __future__ import annotations

import importlib

import click

SIMULATORS = {
    "shopmonkey": "fakes.shopmonkey.cli:main",
    "sendgrid": "fakes.sendgrid_server:main",
    "twilio": "fakes.twilio_server:main",
}


class _Lazy(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SIMULATORS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = SIMULATORS.get(name)
        if target is None:
            return None
        module, _, attr = target.partition(":")
        try:
            command: click.Command = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            return None
        return command


@click.group(cls=_Lazy)
def simulate() -> None:
    """Start a simulator of an outside service (for tests, `make run` and benchmarks)."""
