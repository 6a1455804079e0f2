"""`leadctl run`: every service in one log stream, with the outside world's stand-ins when no
real credentials are set (what `make run` calls)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import click
from pydantic import SecretStr

from leadctl import ROOT
from leadctl.run.demo import (
    DEMO_OPERATOR,
    ensure_demo_operator,
    plan,
    provision_demo_locations,
    watch_first_touch,
)
from leadctl.run.ports import service_listeners, taken
from leadctl.run.supervisor import supervise
from leadctl.secrets.local import ensure_local_secrets
from services.common.settings import CommonSettings, SecretsEncryptionSettings, load_settings


class RunSettings(CommonSettings, SecretsEncryptionSettings):
    """What `leadctl run` itself reads (the services read their own)."""

    #: the demo operator's password (generated into .env.local by `leadctl secrets local`)
    demo_operator_password: SecretStr | None = None


@click.command("run")
@click.option("--no-demo", is_flag=True, help="Do not create demo locations when none exist.")
def run_all(no_demo: bool) -> None:
    """Run every service in one log stream (what `make run` calls); Ctrl-C stops them all.

    Without SHOPMONKEY_API_KEY the Shopmonkey simulator feeds it; without SendGrid/Twilio keys
    the fake providers stand in and one demo address is whitelisted (see leadctl/run/demo.py).
    The secrets a local run needs (ID_SECRET, LINK_SIGNING_KEYS, SECRETS_ENCRYPTION_KEYS, the
    demo operator's password) are generated into .env.local once, unless set elsewhere."""
    written = ensure_local_secrets(ROOT)
    if written:
        click.echo(f"secrets         {', '.join(written)} generated into .env.local")
    settings = load_settings(RunSettings)
    started = time.monotonic()
    root = click.get_current_context().find_root()
    group = root.command
    assert isinstance(group, click.Group)
    the_plan = plan(dict(os.environ), available=lambda n: group.get_command(root, n) is not None)
    names = {p.name for p in the_plan.processes}
    problems = taken(the_plan.listeners + service_listeners(names))
    for problem in problems:
        click.secho(problem, fg="red", err=True)
    if problems:
        raise click.ClickException("nothing started: free the ports above (or move them)")
    click.echo(f"Kafka           {settings.kafka_bootstrap_servers}")
    click.echo(f"PostgreSQL      {settings.database_url.split('@')[-1]}")
    click.echo(f"topics          {', '.join(settings.topics.main())} (+ .dlq)")
    if "SHOPMONKEY_API_BASE_URL" in the_plan.env and not no_demo:
        lines = asyncio.run(
            provision_demo_locations(settings.sqlalchemy_url, box=settings.secret_box)
        )
        for line in lines:
            click.echo(line)
        if settings.demo_operator_password is not None:
            password = settings.demo_operator_password.get_secret_value()
            asyncio.run(ensure_demo_operator(settings.sqlalchemy_url, password))
            click.echo(
                f"demo operator   {DEMO_OPERATOR} (hq), password: DEMO_OPERATOR_PASSWORD "
                "in .env.local"
            )
    for note in the_plan.notes:
        click.echo(note)
    stop = threading.Event()
    if the_plan.demo_email:
        watch_first_touch(
            settings.libpq_url,
            started=started,
            stop=stop,
            say=lambda msg: click.secho(f"==> {msg}", bold=True),
        )
    try:
        code = supervise(the_plan.processes)
    finally:
        stop.set()
    sys.exit(code)
