"""`leadctl`: the one operator entry point. Every command is loaded only when it is called (or
listed by `--help`), so the CLI starts fast and a service never imports another; a command
whose module does not import fails with that ImportError, never as "No such command"."""

from __future__ import annotations

import importlib
from typing import Any

import click

from services.common.errors import LeadOrchestratorError

#: Each command and where it lives ("module:attribute"), beside the code it runs.
COMMANDS = {
    "infra": "leadctl.provision:infra",
    "topics": "leadctl.topics.cli:topics",
    "migrate": "leadctl.provision:migrate",
    "companies": "leadctl.companies:companies",
    "tenants": "leadctl.tenants:tenants",
    "operators": "leadctl.operators.cli:operators",
    "secrets": "leadctl.secrets.cli:secrets",
    "run": "leadctl.run.cli:run_all",
    "ingest": "services.ingest.entrypoints.cli:ingest",
    "poller": "services.ingest.entrypoints.cli:poller",
    "sequencer": "services.sequencer.entrypoints.cli:sequencer",
    "outbound": "services.outbound.entrypoints.cli:outbound",
    "simulate": "fakes.cli:simulate",
    "status": "leadctl.status.cli:status",
    "leads": "leadctl.leads.cli:leads",
    "replay": "leadctl.replay.cli:replay",
    "backfill": "leadctl.backfill.cli:backfill",
    "plans": "leadctl.plans.cli:plans",
    "templates": "leadctl.templates.cli:templates",
}


class Cli(click.Group):
    """Lazy sub-commands, and our own errors (bad config, unreachable Kafka) as one clean line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return super().get_command(ctx, name)
        module, _, attr = COMMANDS[name].partition(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeadOrchestratorError as exc:
            raise click.ClickException(str(exc)) from exc


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Lead orchestrator operations: infrastructure, topics, migrations, companies, tenants,
    operators, secrets, services."""


if __name__ == "__main__":
    cli()
