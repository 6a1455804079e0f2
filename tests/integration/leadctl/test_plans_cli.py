"""`leadctl plans show|set|diff` and `leadctl templates preview` against the real database:
the plan in force and its version, a bad file changing nothing, a new version per `set` kept
in the tenant's row, the sequencer's tenant directory reading the versions, migration 0014
making a plan a tenant had its version 1; a preview rendered by outbound's renderer from the
read model, sending nothing."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from alembic import command
from click.testing import CliRunner, Result
from psycopg.types.json import Jsonb
from sqlalchemy import text

from leadctl.main import cli
from leadctl.provision import alembic_config
from services.outbound.adapters.templates import JinjaRenderer
from services.sequencer.adapters.tenant_directory import PostgresDirectory
from services.sequencer.domain.campaigns import NO_CAMPAIGNS, Campaign
from services.sequencer.domain.plan import DEFAULT_PLAN, parse_plan
from tests.support.read_model_rows import add_lead

pytestmark = pytest.mark.integration

REVIEW = """\
enabled: true
steps:
  - {after_minutes: 60, channel: preferred, template: review_request}
"""
NURTURE = """\
name: short
steps:
  - {after_minutes: 0, channel: email, template: nurture_email_welcome}
  - {after_minutes: 120, channel: sms, template: nurture_sms_followup}
lost_after_minutes: 2880
"""
BAD = """\
enabled: true
steps:
  - {after_minutes: 60, channel: preferred, template: review_request}
  - {after_minutes: 120, channel: sms, template: nurture_email_welcome}
"""


async def invoke(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), catch_exceptions=False)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, db_url: str) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def plan_file(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


async def versions(db_engine: Any, tenant: uuid.UUID) -> list[tuple[str, int, str]]:
    async with db_engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT campaign, version, set_by FROM plan_versions WHERE tenant_id = :t"
                " ORDER BY campaign, version"
            ),
            {"t": tenant},
        )
        return [(r.campaign, r.version, r.set_by) for r in rows]


async def row(db_engine: Any, tenant: uuid.UUID) -> tuple[Any, Any]:
    async with db_engine.connect() as conn:
        found = await conn.execute(
            text("SELECT nurture_plan, campaign_plans FROM tenants WHERE id = :t"), {"t": tenant}
        )
        r = found.one()
        return r.nurture_plan, r.campaign_plans


async def test_plans_show_set_diff_keep_versions_and_the_tenant_row(
    env: str, db_engine: Any, make_tenant: Any, tmp_path: Path
) -> None:
    tenant, _ = await make_tenant()
    t = str(tenant.id)

    shown = await invoke("plans", "show", "--tenant", t, "--campaign", "nurture")
    assert shown.exit_code == 0, shown.output
    assert "# in force: the default plan (none set)" in shown.output
    assert parse_plan(yaml.safe_load(shown.output)) == DEFAULT_PLAN
    shown = await invoke("plans", "show", "--tenant", t)
    assert shown.output.count("---") == 3 and "campaign appointment" in shown.output
    assert "off (none set" in shown.output

    # a bad file: the place named, nothing stored, the row unchanged
    bad = await invoke("plans", "set", "--tenant", t, "--campaign", "review",
                       "--file", plan_file(tmp_path, "bad.yaml", BAD))  # fmt: skip
    assert bad.exit_code == 1
    assert "review.steps.1.template: no sms template 'nurture_email_welcome'" in bad.output
    assert "nothing changed" in bad.output
    assert await versions(db_engine, tenant.id) == []
    assert await row(db_engine, tenant.id) == (None, None)

    # diff: what would change, nothing stored
    review = plan_file(tmp_path, "review.yaml", REVIEW)
    diff = await invoke("plans", "diff", "--tenant", t, "--campaign", "review", "--file", review)
    assert diff.exit_code == 0, diff.output
    assert "-enabled: false\n+enabled: true\n" in diff.output
    assert "-- after_minutes: 120\n+- after_minutes: 60\n" in diff.output
    assert "-  template: review_reminder" in diff.output
    assert await versions(db_engine, tenant.id) == []

    # set: version 1, the tenant's row holds it too
    done = await invoke("plans", "set", "--tenant", t, "--campaign", "review",
                        "--file", review, "--by", "alice")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "review plan version 1" in done.output and "by alice" in done.output
    nurture_row, campaigns_row = await row(db_engine, tenant.id)
    assert nurture_row is None
    assert campaigns_row == {
        "review": {
            "enabled": True,
            "steps": [{"after_minutes": 60, "channel": "preferred", "template": "review_request"}],
            "max_late_minutes": 1440,
        }
    }
    again = await invoke("plans", "set", "--tenant", t, "--campaign", "review", "--file", review)
    assert "unchanged: review is already version 1" in again.output
    same = await invoke("plans", "diff", "--tenant", t, "--campaign", "review", "--file", review)
    assert "no change" in same.output and "version 1" in same.output

    # a second version of the nurture plan, then of the review plan
    short = plan_file(tmp_path, "nurture.yaml", NURTURE)
    for by in ("bob", "carol"):
        body = NURTURE if by == "bob" else NURTURE.replace("2880", "4320")
        short = plan_file(tmp_path, f"nurture-{by}.yaml", body)
        done = await invoke("plans", "set", "--tenant", t, "--campaign", "nurture",
                            "--file", short, "--by", by)  # fmt: skip
        assert done.exit_code == 0, done.output
    assert await versions(db_engine, tenant.id) == [
        ("nurture", 1, "bob"), ("nurture", 2, "carol"), ("review", 1, "alice"),
    ]  # fmt: skip
    nurture_row, campaigns_row = await row(db_engine, tenant.id)
    assert nurture_row["lost_after_minutes"] == 4320 and "review" in campaigns_row
    shown = await invoke("plans", "show", "--tenant", t, "--campaign", "nurture")
    assert "# in force: version 2, set " in shown.output and "by carol" in shown.output
    assert "# earlier: version 1" in shown.output and "by bob" in shown.output
    assert yaml.safe_load(shown.output)["lost_after_minutes"] == 4320

    # the sequencer's directory reads the versions: each in force from when it was set
    directory = PostgresDirectory(db_engine, "America/New_York", ttl=60)
    await directory.ensure([tenant.id])
    config = directory.get(tenant.id)
    assert [p.lost_after for _, p in config.plan_versions] == [timedelta(days=2), timedelta(days=3)]
    first, second = (at for at, _ in config.plan_versions)
    assert config.plan_at(first - timedelta(seconds=1)) == DEFAULT_PLAN
    assert config.plan_at(first).lost_after == timedelta(days=2)
    assert config.plan_at(second) == config.plan and config.plan.name == "short"
    assert config.campaign_at(Campaign.REVIEW, first - timedelta(days=1)).enabled is False
    assert config.campaigns.review.steps[0].after == timedelta(minutes=60)
    assert config.campaigns.declined == NO_CAMPAIGNS.declined  # never set: off


async def test_a_plan_set_outside_versions_becomes_version_one_and_unknown_tenants_fail(
    env: str, db_engine: Any, make_tenant: Any, tmp_path: Path
) -> None:
    tenant, _ = await make_tenant()
    old = {"steps": [{"after_minutes": 0, "channel": "email", "template": "estimate_checkin"}],
           "lost_after_minutes": 600}  # fmt: skip
    async with db_engine.begin() as conn:
        await conn.execute(
            text("UPDATE tenants SET nurture_plan = CAST(:p AS jsonb) WHERE id = :t"),
            {"p": json.dumps(old), "t": tenant.id},
        )
    shown = await invoke("plans", "show", "--tenant", str(tenant.id), "--campaign", "nurture")
    assert "outside `leadctl plans` (no version)" in shown.output
    assert "template: estimate_checkin" in shown.output
    n = plan_file(tmp_path, "n.yaml", NURTURE)
    done = await invoke("plans", "set", "--tenant", str(tenant.id), "--campaign", "nurture",
                        "--file", n, "--by", "dan")  # fmt: skip
    assert done.exit_code == 0, done.output
    assert await versions(db_engine, tenant.id) == [
        ("nurture", 1, "before plan versions"), ("nurture", 2, "dan"),
    ]  # fmt: skip
    directory = PostgresDirectory(db_engine, "America/New_York", ttl=60)
    await directory.ensure([tenant.id])
    config = directory.get(tenant.id)
    assert config.plan_at(datetime(2000, 1, 1, tzinfo=UTC)).steps[0].template == "estimate_checkin"

    nobody = str(uuid.uuid4())
    for args in (
        ("show",),
        ("set", "--campaign", "review", "--file", plan_file(tmp_path, "r.yaml", REVIEW)),
    ):
        result = await invoke("plans", *args, "--tenant", nobody)
        assert result.exit_code == 1 and f"no tenant {nobody}" in result.output


def test_migration_0014_makes_a_plan_a_tenant_had_its_version_one(scratch_db: str) -> None:
    config = alembic_config("postgresql+psycopg://" + scratch_db.split("://", 1)[1])
    config.attributes["configure_logger"] = False
    command.upgrade(config, "0013")
    plan = {"steps": [{"after_minutes": 0, "channel": "email", "template": "x"}],
            "lost_after_minutes": 60}  # fmt: skip
    campaigns = {"review": {"enabled": True}, "declined": {"enabled": False}}
    a, b = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(scratch_db) as conn:
        conn.execute("INSERT INTO shopmonkey_companies (id, name) VALUES ('co', 'Co')")
        conn.execute(
            "INSERT INTO tenants (id, name, shopmonkey_company_id, shopmonkey_location_id,"
            " nurture_plan, campaign_plans) VALUES (%s, 'A', 'co', 'la', %s, %s),"
            " (%s, 'B', 'co', 'lb', NULL, NULL)",
            (a, Jsonb(plan), Jsonb(campaigns), b),
        )
    command.upgrade(config, "0014")
    with psycopg.connect(scratch_db) as conn:
        rows = conn.execute(
            "SELECT tenant_id, campaign, version, document, valid_from, set_by FROM plan_versions"
            " ORDER BY campaign"
        ).fetchall()
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in rows] == [
        (a, "declined", 1, {"enabled": False}, "migration 0014"),
        (a, "nurture", 1, plan, "migration 0014"),
        (a, "review", 1, {"enabled": True}, "migration 0014"),
    ]
    assert {r[4] for r in rows} == {datetime(1970, 1, 1, tzinfo=UTC)}
    command.downgrade(config, "0013")
    command.upgrade(config, "head")


async def test_templates_preview_renders_what_outbound_would_send_and_sends_nothing(
    env: str, db_engine: Any, make_tenant: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant, _ = await make_tenant(name="Tint World Austin")
    async with db_engine.begin() as conn:
        lead = await add_lead(conn, tenant.id, "new", first_name="Jane")
    rendered: list[str] = []
    real = JinjaRenderer.render

    def spy(self: JinjaRenderer, command: Any, *args: Any, **kwargs: Any) -> Any:
        rendered.append(f"{command.channel.value}:{command.template}")
        return real(self, command, *args, **kwargs)

    monkeypatch.setattr(JinjaRenderer, "render", spy)

    out = await invoke("templates", "preview", "--template", "nurture_email_welcome",
                       "--lead", str(lead))  # fmt: skip
    assert out.exit_code == 0, out.output
    assert rendered == ["email:nurture_email_welcome"]  # the real renderer, email only
    text_out = out.output
    assert "=== email ===" in text_out and "=== sms ===" not in text_out
    assert "Subject: " in text_out and "Hi Jane" in text_out
    assert f"https://chat.tintworld.com/{lead}" in text_out
    assert "1 Main St, Springfield, IL 62701" in text_out  # the footer's postal address
    assert "List-Unsubscribe: <http://localhost:3000/u/" in text_out
    assert "--- html ---" in text_out and "<a href=" in text_out
    assert "jane.doe@gmail.com" not in text_out  # masked like `leads show`

    out = await invoke("templates", "preview", "--template", "review_request",
                       "--lead", str(lead), "--channel", "sms")  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "=== sms ===" in out.output and "Segments: 1 (GSM-7" in out.output
    assert "as a step of the review campaign" in out.output

    # the appointment reminder with the location's name runs over one segment: flagged
    out = await invoke("templates", "preview", "--template", "appointment_reminder",
                       "--lead", str(lead), "--channel", "sms")  # fmt: skip
    assert "warning: more than one SMS segment: Segments: 2 (GSM-7" in out.output

    for args, message in (
        (("--template", "no_such_template", "--lead", str(lead)), "unknown template"),
        (("--template", "nurture_sms_followup", "--lead", str(lead), "--channel", "email"),
         "unknown template 'nurture_sms_followup' for email"),
        (("--template", "nurture_email_welcome", "--lead", str(uuid.uuid4())), "no lead"),
    ):  # fmt: skip
        failed = await invoke("templates", "preview", *args)
        assert failed.exit_code == 1 and message in failed.output, failed.output

    async with db_engine.connect() as conn:  # nothing claimed, recorded or sent
        jobs = await conn.execute(
            text("SELECT count(*) FROM job_executions WHERE lead_id = :l"), {"l": lead}
        )
        assert jobs.scalar_one() == 0
