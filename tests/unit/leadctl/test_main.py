"""The `leadctl` group: every command loads only when called, and a command whose module does
not import says so (the ImportError and its module), never "No such command"."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from leadctl import main
from leadctl.main import COMMANDS, cli


@pytest.fixture
def broken_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A registered command whose module imports something that does not exist."""
    module = f"broken_cmd_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(
        "import click\n"
        "import leadctl_no_such_dependency\n\n"
        "@click.command('broken')\n"
        "def broken() -> None:\n"
        "    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(main.COMMANDS, "broken", f"{module}:broken")
    return module


def test_a_command_whose_module_does_not_import_raises_that_import_error(
    broken_command: str,
) -> None:
    result = CliRunner().invoke(cli, ["broken"])
    assert isinstance(result.exception, ImportError)
    assert "leadctl_no_such_dependency" in str(result.exception)
    assert "No such command" not in result.output


def test_help_fails_loudly_on_a_broken_command_module(broken_command: str) -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert isinstance(result.exception, ImportError)
    assert "leadctl_no_such_dependency" in str(result.exception)


def test_an_unknown_name_is_still_no_such_command() -> None:
    result = CliRunner().invoke(cli, ["no-such-thing"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_every_registered_command_loads() -> None:
    ctx = click.Context(cli)
    for name in COMMANDS:
        assert isinstance(cli.get_command(ctx, name), click.Command), name


def test_the_cli_starts_without_importing_a_command() -> None:
    probe = "import sys, leadctl.main; print(' '.join(sys.modules))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.split()
    )
    commands = {target.partition(":")[0] for target in COMMANDS.values()}
    heavy = {"faust", "confluent_kafka", "aiokafka", "sqlalchemy", "pydantic", "aiohttp"}
    assert loaded.isdisjoint(commands | heavy)
