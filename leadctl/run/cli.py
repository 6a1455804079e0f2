"""`leadctl run`: every service in one log stream, with the outside world's stand-ins when no
real credentials are set (what `make run` calls)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from datetime import UTC, datetime

import click
from pydantic import SecretStr

from leadctl import ROOT
from leadctl.run.banner import recently_sent_to, watch_first_touch
from leadctl.run.demo import DEMO_OPERATOR, DEMO_PHONES, DemoContacts, ensure_demo_operator, plan
from leadctl.run.demo_locations import provision_demo_locations
from leadctl.run.ports import service_listeners, taken
from leadctl.run.supervisor import supervise
from leadctl.secrets.local import ensure_local_secrets
from services.common.settings import CommonSettings, SecretsEncryptionSettings, load_settings


class RunSettings(CommonSettings, SecretsEncryptionSettings):
    """What `leadctl run` itself reads (the services read their own)."""

    #: the demo operator's password (generated into .env.local by `leadctl secrets local`)
    demo_operator_password: SecretStr | None = None


@click.command("run")
@click.option("--no-demo", is_flag=True, help="Do not provision the simulator's demo locations.")
def run_all(no_demo: bool) -> None:
    """Run every service in one log stream (what `make run` calls); Ctrl-C stops them all.

    Every port it needs is checked first: a taken one stops it before anything starts.

    Without SHOPMONKEY_API_KEY the Shopmonkey simulator feeds it; without SendGrid/Twilio keys
    the fake providers stand in and this run's demo addresses are whitelisted
    (leadctl/run/demo.py).
    The secrets a local run needs (ID_SECRET, LINK_SIGNING_KEYS, SECRETS_ENCRYPTION_KEYS, the
    demo operator's password) are generated into .env.local once, unless set elsewhere."""
    started_at, started = datetime.now(UTC), time.monotonic()
    written = ensure_local_secrets(ROOT)
    if written:
        click.echo(f"secrets         {', '.join(written)} generated into .env.local")
    root = click.get_current_context().find_root()
    group = root.command
    assert isinstance(group, click.Group)

    def available(name: str) -> bool:
        return group.get_command(root, name) is not None

    preview = plan(dict(os.environ), available=available)
    names = {p.name for p in preview.processes}
    problems = taken(preview.listeners + service_listeners(names))
    for problem in problems:
        click.secho(problem, fg="red", err=True)
    if problems:
        raise click.ClickException("nothing started: free the ports above (or move them)")
    settings = load_settings(RunSettings)
    demo = DemoContacts.for_run(used_phones=recently_sent_to(settings.libpq_url, DEMO_PHONES))
    the_plan = plan(dict(os.environ), available=available, demo=demo)
    click.echo(f"Kafka           {settings.kafka.describe()}")
    click.echo(f"PostgreSQL      {settings.database_url.split('@')[-1]}")
    click.echo(f"topics          {', '.join(settings.topics.main())} (+ .dlq)")
    if "SHOPMONKEY_API_BASE_URL" in the_plan.env and not no_demo:
        done = asyncio.run(
            provision_demo_locations(settings.sqlalchemy_url, box=settings.secret_box)
        )
        for line in done.lines:
            click.echo(line)
        for problem in done.problems:
            click.secho(f"demo cannot work: {problem}", fg="red", bold=True)
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
    if the_plan.demo_emails:
        recipients = [*the_plan.demo_emails, *filter(None, [the_plan.demo_phone])]
        watch_first_touch(
            settings.libpq_url,
            since=started_at,
            started=started,
            recipients=recipients,
            stop=stop,
            say=lambda msg: click.secho(f"==> {msg}", bold=True),
        )
    try:
        code = supervise(the_plan.processes)
    finally:
        stop.set()
    sys.exit(code)
