"""`leadctl topics create|list|fix`: every topic of DESIGN §2 and its DLQ with KAFKA_PARTITIONS
partitions, KAFKA_REPLICATION_FACTOR replicas and KAFKA_MIN_INSYNC_REPLICAS; existing topics
that fall short are reported with the command that fixes them (`fix`, which also covers the
sequencer's own topics: its Faust changelogs and ticks)."""

from __future__ import annotations

import click

from services.common.errors import InfrastructureError
from services.common.kafka.admin import Durability, TopicReport, ensure_topics, inspect_topics
from services.common.kafka.startup import durability_of, verify_connection
from services.common.settings import load_settings
from services.sequencer.settings import SequencerSettings

FIX = "leadctl topics fix"


def _settings() -> SequencerSettings:
    """The settings (the sequencer's: they name its app id, hence its own topics), once the
    cluster accepted our transport settings (a refusal is a ConfigError naming the setting)."""
    settings = load_settings(SequencerSettings)
    if not verify_connection(settings.kafka):
        raise InfrastructureError(f"Kafka at {settings.kafka.describe()} does not answer")
    return settings


def _line(r: TopicReport) -> str:
    shape = f"{r.partitions} partitions, RF {r.replication}, min ISR {r.min_insync}"
    why = f": {'; '.join(r.problems)}" if r.problems else ""
    return f"{r.action:8} {r.name} ({shape}){why}"


def _durability_text(d: Durability) -> str:
    return f"KAFKA_REPLICATION_FACTOR={d.replication} / KAFKA_MIN_INSYNC_REPLICAS={d.min_insync}"


def _app_topics(settings: SequencerSettings, existing: list[str]) -> list[str]:
    """The Faust app's own topics (changelogs, ticks) among `existing`."""
    return sorted(n for n in existing if n.startswith(f"{settings.app_id}-"))


@click.group()
def topics() -> None:
    """Kafka topics of DESIGN §2 and their dead-letter topics."""


@topics.command("create")
@click.option("--partitions", type=int, default=None, help="Default: KAFKA_PARTITIONS (12).")
def topics_create(partitions: int | None) -> None:
    """Create every topic and its DLQ (idempotent); report existing ones that differ."""
    settings = _settings()
    count = partitions or settings.kafka_partitions
    durability = durability_of(settings)
    reports = ensure_topics(
        settings.kafka,
        partitions=count,
        replication=durability.replication,
        min_insync=durability.min_insync,
        names=settings.topics.with_dlqs(),
    )
    for r in reports:
        click.echo(_line(r))
    miscounted = [r.name for r in reports if any(p.startswith("partitions") for p in r.problems)]
    weak = [r.name for r in reports if r.under_replicated]
    problems = []
    if weak:
        problems.append(f"{len(weak)} topic(s) below {_durability_text(durability)}: run `{FIX}`")
    if miscounted:
        problems.append(
            f"partition count differs from {count} on: {', '.join(miscounted)} "
            "(Faust needs co-partitioned topics; recreate them or set KAFKA_PARTITIONS)"
        )
    if problems:
        raise click.ClickException("; ".join(problems))


@topics.command("list")
def topics_list() -> None:
    """List the project's topics with partitions, replication factor and min ISR."""
    from services.common.kafka.admin import admin_client

    settings = _settings()
    existing = list(admin_client(settings.kafka).list_topics(timeout=10).topics)
    names = [*settings.topics.with_dlqs(), *_app_topics(settings, existing)]
    found = {
        r.name: r for r in inspect_topics(settings.kafka, names, durability=durability_of(settings))
    }
    for name in names:
        click.echo(_line(found[name]) if name in found else f"missing  {name}")


@topics.command("fix")
@click.option("--timeout", type=float, default=300.0, help="Seconds to wait for new replicas.")
def topics_fix(timeout: float) -> None:
    """Raise replication (partition reassignment) and min ISR of every project topic,
    the sequencer's own included, to KAFKA_REPLICATION_FACTOR / KAFKA_MIN_INSYNC_REPLICAS."""
    from leadctl.topics import reassign
    from services.common.kafka.admin import admin_client

    settings = _settings()
    durability = durability_of(settings)
    existing = list(admin_client(settings.kafka).list_topics(timeout=10).topics)
    names = [*settings.topics.with_dlqs(), *_app_topics(settings, existing)]
    reports = inspect_topics(settings.kafka, names, durability=durability)
    weak = [r for r in reports if r.under_replicated]
    if not weak:
        click.echo(f"every topic meets {_durability_text(durability)}")
        return
    short = [r.name for r in weak if r.replication < durability.replication]
    plan = reassign.replica_plan(settings.kafka, short, durability.replication)
    if plan:
        moves = sum(len(p) for p in plan.values())
        click.echo(f"adding replicas to {moves} partition(s) of {len(plan)} topic(s) ...")
        reassign.start_reassignment(settings.kafka, plan)
        left = reassign.wait_in_sync(settings.kafka, plan, timeout)
        if left:
            raise click.ClickException(
                f"{len(left)} partition(s) still copying after {timeout:.0f} s (e.g. "
                f"{left[0]}); min.insync.replicas left as it was: run `{FIX}` again later"
            )
    low = {r.name: durability.min_insync for r in weak if r.min_insync < durability.min_insync}
    reassign.set_min_insync(settings.kafka, low)
    for r in inspect_topics(settings.kafka, [w.name for w in weak], durability=durability):
        click.echo(_line(r))
