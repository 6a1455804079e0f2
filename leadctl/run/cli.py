"""`leadctl run`: every service in one log stream, with the outside world's stand-ins when no
real credentials are set (what `make run` calls)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time

import click

from leadctl.run.demo import plan, provision_demo_locations, watch_first_touch
from leadctl.run.supervisor import supervise
from services.common.settings import CommonSettings, load_settings


@click.command("run")
@click.option("--no-demo", is_flag=True, help="Do not create demo locations when none exist.")
def run_all(no_demo: bool) -> None:
    """Run every service in one log stream (what `make run` calls); Ctrl-C stops them all.

    Without SHOPMONKEY_API_KEY the Shopmonkey simulator feeds it; without SendGrid/Twilio keys
    the fake providers stand in and one demo address is whitelisted (see leadctl/run/demo.py)."""
    settings = load_settings(CommonSettings)
    started = time.monotonic()
    root = click.get_current_context().find_root()
    group = root.command
    assert isinstance(group, click.Group)
    the_plan = plan(dict(os.environ), available=lambda n: group.get_command(root, n) is not None)
    click.echo(f"Kafka           {settings.kafka.describe()}")
    click.echo(f"PostgreSQL      {settings.database_url.split('@')[-1]}")
    click.echo(f"topics          {', '.join(settings.topics.main())} (+ .dlq)")
    if "SHOPMONKEY_API_BASE_URL" in the_plan.env and not no_demo:
        for line in asyncio.run(provision_demo_locations(settings.sqlalchemy_url)):
            click.echo(line)
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
