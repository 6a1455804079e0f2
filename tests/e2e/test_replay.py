"""Replay end to end on the real stack:

1. a simulated day of traffic for 20 tenants (24 h of order history polled, then live
   webhooks), with outbound sending to the fake SendGrid/Twilio;
2. a full replay from the beginning with `--execute` (the CLI rewinds the stopped sequencer's
   group, the restarted sequencer replays, the CLI follows and summarises) → the `leads`
   table is identical and the fakes received zero new requests. The tenants run every
   campaign (declined work, review requests, appointment reminders; plans in minutes) and
   part of the day's orders were paid or booked, so the replay re-derives campaign runs
   as well as the estimate nurture; most locations belong to a company of several;
3. a replay of one tenant → every other tenant's rows are untouched (byte for byte, including
   `version` and `projected_at`), and again nothing reaches a provider.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import tz_at_local_hour
from tests.e2e.support import DEMO_PHONE, Stack

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(1200)]

TENANTS = 20
TRAFFIC_SECONDS = 40
#: Every campaign on, its first message at once (the day's paid orders and bookings get theirs
#: before the snapshot, so a replay could send them again), the next ones minutes later.
CAMPAIGNS = {
    "declined": {
        "steps": [
            {"after_minutes": 0, "channel": "email", "template": "declined_email_first"},
            {"after_minutes": 3, "channel": "sms", "template": "declined_sms_second"},
        ]
    },
    "review": {
        "steps": [
            {"after_minutes": 0, "channel": "preferred", "template": "review_request"},
            {"after_minutes": 4, "channel": "preferred", "template": "review_reminder"},
        ]
    },
    "appointment": {
        "steps": [
            {"after_minutes": -7 * 24 * 60, "channel": "email", "template": "appointment_reminder"}
        ],
        "max_late_minutes": 7 * 24 * 60,
    },
    "review_url": "https://reviews.example.com/e2e-shop",
}


def _comparable(leads: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A lead's content. `version` is a write counter that never goes back (checked apart):
    a lead re-derived by the replay may pass through its reset state before its replayed
    outcomes restore it, which costs versions but must end with the same content."""
    skip = ("projected_at", "version")
    return {k: {c: v for c, v in r.items() if c not in skip} for k, r in leads.items()}


def _versions_went_back(
    before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]
) -> list[str]:
    return sorted(
        f"{k} version: {r['version']} -> {after[k]['version']}"
        for k, r in before.items()
        if k in after and after[k]["version"] < r["version"]
    )


def _diff(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    out = [f"{k}: missing after" for k in before.keys() - after.keys()]
    out += [f"{k}: new after" for k in after.keys() - before.keys()]
    for k in before.keys() & after.keys():
        for col, old in before[k].items():
            if after[k].get(col) != old:
                out.append(f"{k} {col}: {old!r} -> {after[k].get(col)!r}")
    return sorted(out)


def _wait_text(stack: Stack, proc_name: str, text: str, timeout: float) -> None:
    proc = stack.procs[proc_name]
    stack.wait(lambda: text in proc.text() or not proc.alive(), timeout, f"{text!r}")
    assert text in proc.text(), proc.tail()


def _restart_sequencer(stack: Stack) -> None:
    stack.start("sequencer")
    stack.wait(lambda: stack.healthy("sequencer"), 120, "sequencer health")


def _stop_sequencer(stack: Stack) -> None:
    stack.procs["sequencer"].stop()
    stack.wait(lambda: not stack.sequencer_active(), 60, "the sequencer to leave its group")


def _simulated_day(stack: Stack, tmp_path: Path, *campaign_options: str) -> list[str]:
    stack.start("sendgrid", "simulate", "sendgrid", "--port", str(stack.ports["sendgrid"]))
    stack.start("twilio", "simulate", "twilio", "--port", str(stack.ports["twilio"]))
    stack.start("ingest")
    stack.start("sequencer")
    stack.start("outbound")
    for name in ("ingest", "sequencer", "outbound"):
        stack.wait(lambda n=name: stack.healthy(n), 120, f"{name} health")  # type: ignore[misc]
    sim = stack.simulate_shopmonkey(
        tmp_path / "sim-state.json",
        "--tenants",
        str(TENANTS),
        "--orders",
        "6",
        "--history-hours",
        "24",
        "--rate",
        "240",
        "--demo-emails",
        "demo@example.com",
        # the demo customers' consent agrees (opted in, no channel preferred): one shared
        # address whose last customer preferred SMS would have every email give way to it
        "--demo-phone",
        DEMO_PHONE,
        "--webhook-url",
        f"http://127.0.0.1:{stack.ports['ingest']}/webhooks/shopmonkey/{{tenant_id}}/order",
        # where it is midday now: the day's touch points are inside their send windows
        # whatever the hour CI runs at (the default zone's evening defers every email)
        "--timezone",
        tz_at_local_hour(12),
        *campaign_options,
    )
    started = time.monotonic()
    poller = stack.start("poller", "poller", "--once")  # the day's history (24 h)
    stack.wait(lambda: not poller.alive(), 180, "poller --once")
    time.sleep(max(0.0, TRAFFIC_SECONDS - (time.monotonic() - started)))
    stack.procs["shopmonkey"].stop()
    stack.quiesce()
    return [loc["tenant_id"] for c in sim["companies"] for loc in c["locations"]]


def _sent(stack: Stack) -> dict[str, tuple[str, str]]:
    """command id → (tenant id, lead id) of every touch point the ledger says went out."""
    rows = stack.rows(
        "SELECT command_id, tenant_id, lead_id FROM job_executions WHERE status = 'sent'"
    )
    return {str(r["command_id"]): (str(r["tenant_id"]), str(r["lead_id"])) for r in rows}


def _requests(stack: Stack) -> int:
    """Messages the providers were asked to send (POSTs). Not their lookups (GETs): outbound's
    stale-claim sweeper looks up, at this stack's providers, every claim a dead process left
    in the test database, other tests' too, which made this count move when such a test had
    run before on the same worker (2 lookups per sweep, 3 full runs out of 3)."""
    return sum(
        1
        for fake in ("sendgrid", "twilio")
        for r in stack.requests_to(fake)
        if r.get("method") == "POST"
    )


def _assert_nothing_sent_again(
    stack: Stack, sent_before: dict[str, tuple[str, str]], requests: int
) -> dict[str, tuple[str, str]]:
    """No touch point reached a provider twice: every provider request since the snapshot is a
    first send of a command the ledger had never sent (a step of the simulated day that fell
    due meanwhile: the day's orders are up to 24 h old, so a slow run sees some), never one
    sent before. Returns those first sends (command id → tenant, lead)."""
    sent_now = _sent(stack)
    assert set(sent_before) <= set(sent_now), "a sent touch point left the ledger"
    first_sends = {cid: at for cid, at in sent_now.items() if cid not in sent_before}
    assert _requests(stack) == requests + len(first_sends), (
        f"{_requests(stack) - requests} provider requests since the snapshot, "
        f"{len(first_sends)} of them first sends of a step that fell due"
    )
    return first_sends


def _campaign_sends(stack: Stack, tenants: set[str]) -> dict[tuple[str, str], int]:
    """How many of the tenants' campaign touch points the ledger holds, by (campaign kind,
    status): `appointment:ap-1@…` counts as `appointment`."""
    rows = stack.rows(
        "SELECT split_part(campaign, ':', 1) AS kind, status, count(*) AS n FROM job_executions"
        " WHERE campaign IS NOT NULL AND tenant_id = ANY(%s) GROUP BY 1, 2",
        [uuid.UUID(t) for t in tenants],
    )
    return {(r["kind"], r["status"]): r["n"] for r in rows}


def _without(leads: dict[str, dict[str, Any]], gone: set[str]) -> dict[str, dict[str, Any]]:
    """The leads but those with a touch point of their own since the snapshot (a step that
    fell due: its send and delivery move the lead, whatever the replay does)."""
    return {k: r for k, r in leads.items() if k not in gone}


def test_full_replay_changes_no_lead_and_sends_nothing(  # type: ignore[no-untyped-def]
    stack: Stack, tmp_path: Path
) -> None:
    plans = tmp_path / "campaigns.json"
    plans.write_text(json.dumps(CAMPAIGNS))
    # the day's whitelisted customers share one address and number: with the caps, one
    # message a day would go to them and every campaign but one would be skipped or wait
    stack.env |= {"CAMPAIGN_CAP": "false", "FREQUENCY_CAP_EMAIL": "0", "FREQUENCY_CAP_SMS": "0"}
    tenants = set(
        _simulated_day(
            stack,
            tmp_path,
            "--campaigns",
            str(plans),
            "--history-progress",
            "0.6",
            "--demo-story",
            # chains and single shops: a new order is told to its company's other locations,
            # and claims for one customer meet across them (the contact lock)
            "--companies",
            "3,3,3,3,2,2,2,1,1",
        )
    )

    def leads() -> dict[str, dict[str, Any]]:  # this run's (the database is per session)
        return {k: r for k, r in stack.leads().items() if str(r["tenant_id"]) in tenants}

    before = leads()
    assert len({r["tenant_id"] for r in before.values()}) == TENANTS, stack.tails()
    requests_before, sent_before = _requests(stack), _sent(stack)
    assert requests_before > 0, "the day sent nothing: the test could not see a re-send"
    campaigns = _campaign_sends(stack, tenants)
    print(f"the day's campaign touch points by (campaign, status): {campaigns}")
    assert {"declined", "review", "appointment"} <= {c for c, s in campaigns if s == "sent"}, (
        "a campaign sent nothing in the day: the test could not see it sent again"
    )

    _stop_sequencer(stack)
    replay = stack.start(
        "replay",
        "replay",
        "--since",
        "beginning",
        "--execute",
        "--timeout",
        "600",
        "--outbound-timeout",
        "180",
    )
    _wait_text(stack, "replay", "Start the sequencer now", 120)
    _restart_sequencer(stack)
    stack.wait(lambda: not replay.alive(), 700, "the replay to finish")
    out = replay.text()
    print(out[-2500:])
    assert replay.popen.returncode == 0, stack.tails()
    assert "sent to a provider:            0" in out, out
    stack.quiesce()
    # nobody was contacted again: every provider request since is a first send in the ledger
    first_sends = _assert_nothing_sent_again(stack, sent_before, requests_before)
    moved = {lead for _, lead in first_sends.values()}
    run = stack.rows("SELECT status, stats FROM replay_runs ORDER BY created_at")[-1]
    assert run["status"] == "done"
    assert run["stats"]["summary"]["sent"] == 0
    assert run["stats"]["summary"]["commands_reemitted"] > 0
    # the read model is as it was
    after = leads()
    changed = _diff(_comparable(_without(before, moved)), _comparable(_without(after, moved)))
    assert not changed, f"{len(changed)} differences:\n" + "\n".join(changed[:40])
    assert not _versions_went_back(before, after)


def test_one_tenant_replay_leaves_every_other_tenant_untouched(  # type: ignore[no-untyped-def]
    stack: Stack, tmp_path: Path
) -> None:
    tenants = _simulated_day(stack, tmp_path)
    before = stack.leads()
    requests_before, sent_before = _requests(stack), _sent(stack)
    senders = stack.rows(  # this run's tenants only (the test database is per session)
        "SELECT tenant_id, count(*) AS n FROM job_executions "
        "WHERE status = 'sent' AND tenant_id = ANY(%s) "
        "GROUP BY tenant_id ORDER BY n DESC, tenant_id",
        [uuid.UUID(t) for t in tenants],
    )
    assert senders, "the day sent nothing"
    chosen = str(senders[0]["tenant_id"])
    assert any(str(r["tenant_id"]) == chosen for r in before.values())
    others_before = {k: r for k, r in before.items() if str(r["tenant_id"]) != chosen}

    # the ledger forgot this tenant's touch points (pruned past its retention): record-only
    # mode alone must keep the replayed commands from reaching a provider
    forgotten = stack.rows(
        "DELETE FROM job_executions WHERE tenant_id = %s RETURNING command_id, status",
        uuid.UUID(chosen),
    )
    assert any(r["status"] == "sent" for r in forgotten), "chosen tenant had no sent touch point"
    sent_before = {cid: at for cid, at in sent_before.items() if at[0] != chosen}  # forgotten
    _stop_sequencer(stack)
    one = stack.start(
        "replay-one",
        "replay",
        "--since",
        "beginning",
        "--tenant",
        chosen,
        "--execute",
        "--no-follow",
    )
    stack.wait(lambda: not one.alive(), 120, "replay --tenant")
    assert one.popen.returncode == 0, one.tail()
    print(one.text()[-2500:])
    _restart_sequencer(stack)
    stack.wait(
        lambda: (
            stack.rows("SELECT status FROM replay_runs ORDER BY created_at")[-1]["status"] == "done"
        ),
        600,
        "the tenant replay to be done",
    )
    stack.quiesce()
    final = stack.leads()
    others_after = {k: r for k, r in final.items() if str(r["tenant_id"]) != chosen}
    first_sends = _assert_nothing_sent_again(stack, sent_before, requests_before)
    assert chosen not in {t for t, _ in first_sends.values()}, "forgotten touch points went out"
    moved = {lead for _, lead in first_sends.values()}
    # every column, projected_at included
    changed = _diff(_without(others_before, moved), _without(others_after, moved))
    assert not changed, f"{len(changed)} differences:\n" + "\n".join(changed[:40])
    again = stack.rows(
        "SELECT status, record_only FROM job_executions WHERE tenant_id = %s", uuid.UUID(chosen)
    )
    assert again, "outbound recorded nothing for the replayed commands"
    assert {r["status"] for r in again} <= {"recorded", "skipped", "deferred"}, again
    assert all(r["record_only"] for r in again)
    assert any(r["status"] == "recorded" for r in again)
    stats = stack.rows("SELECT stats FROM replay_runs ORDER BY created_at")[-1]["stats"]
    assert stats.get("events_reread", 0) > 0, stats  # the sequencer did replay the tenant
