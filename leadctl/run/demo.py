"""What `leadctl run` (and so `make run`) starts: the four services, plus the outside world's
stand-ins when no real credentials are set.

- No `SHOPMONKEY_API_KEY`: the Shopmonkey simulator serves the API and sends signed
  company-global webhooks to ingest's company URL; its companies (one with two locations, one
  with one) become demo companies and locations (timezones, hours, service catalog) unless
  real tenants already exist.
- No SendGrid key / no Twilio credentials: the fake providers (real HTTP servers on loopback
  that record every request) take their place, with fake credentials, and the whitelist holds
  exactly this run's demo addresses (only when `LEAD_EMAIL_WHITELIST` is empty) and the phone
  list this run's demo number (only when `LEAD_PHONE_WHITELIST` is empty too); the
  simulator's customers with those addresses have that number, so touch points are visibly
  sent to them (SMS included) and skipped for everyone else. The addresses are new each run
  (`demo.lead+<run>@example.com`) and so are the simulator's orders, so a second run within a
  day is not all `frequency_cap` skips. All the demo customers share this number, so the
  per-customer caps (`FREQUENCY_CAP_EMAIL`, `FREQUENCY_CAP_SMS`, `CAMPAIGN_CAP`) are off for
  the demo unless set: with them one message a day would get through, and no campaign.
  Real credentials are never combined with the demo
  whitelists: with a real key set, the whitelists are exactly what the operator configured.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from leadctl.companies import COMPANY_WEBHOOK_PATH
from leadctl.run.ports import Listener
from leadctl.run.supervisor import Process, leadctl

#: Every demo address is this one plus-tagged with the run (`demo.lead+<run>@example.com`).
DEMO_EMAIL = "demo.lead@example.com"
#: The numbers a demo customer's phone is taken from: the range NANP keeps for fiction,
#: +1 202 555-0100 to -0199.
DEMO_PHONES = tuple(f"+120255501{n:02d}" for n in range(100))
DEMO_PHONE = DEMO_PHONES[0]
SIM_SEED = 1
#: The demo's companies by number of locations: one company with two, one with one.
SIM_COMPANIES = (2, 1)
#: Loopback ports of the stand-ins; override with SHOPMONKEY_SIM_PORT, FAKE_SENDGRID_PORT,
#: FAKE_TWILIO_PORT (read by `leadctl run` only).
DEFAULT_PORTS = {"shopmonkey": 3010, "sendgrid": 3011, "twilio": 3012}
PORT_VARS = {
    "shopmonkey": "SHOPMONKEY_SIM_PORT",
    "sendgrid": "FAKE_SENDGRID_PORT",
    "twilio": "FAKE_TWILIO_PORT",
}

#: Zones a demo location may take, one per UTC offset from -10 to +12: the first demo location
#: gets the zone where it is currently mid-day, so a fresh `make run` sees a touch point sent
#: within minutes at any hour of the day (a real location keeps its own timezone).
DEMO_ZONES = (
    "Pacific/Honolulu",
    "America/Anchorage",
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Halifax",
    "America/Sao_Paulo",
    "Atlantic/South_Georgia",
    "Atlantic/Azores",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Athens",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Karachi",
    "Asia/Dhaka",
    "Asia/Bangkok",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Brisbane",
    "Pacific/Noumea",
    "Pacific/Auckland",
)
#: The demo locations' campaigns, in minutes rather than days, so `make run` shows each one
#: within its first minutes: declined work followed up 1, 3 and 5 minutes after the invoice, a
#: review request a minute after payment (a reminder 3 minutes later), and the appointment
#: reminder as soon as the appointment is booked (the simulator books them 1 to 7 days ahead).
DEMO_CAMPAIGNS: dict[str, Any] = {
    "declined": {
        "steps": [
            {"after_minutes": 1, "channel": "email", "template": "declined_email_first"},
            {"after_minutes": 3, "channel": "sms", "template": "declined_sms_second"},
            {"after_minutes": 5, "channel": "email", "template": "declined_email_last"},
        ]
    },
    "review": {
        "steps": [
            {"after_minutes": 1, "channel": "preferred", "template": "review_request"},
            {"after_minutes": 4, "channel": "preferred", "template": "review_reminder"},
        ]
    },
    "appointment": {
        "steps": [
            {
                "after_minutes": -7 * 24 * 60,
                "channel": "preferred",
                "template": "appointment_reminder",
            }
        ],
        "max_late_minutes": 7 * 24 * 60,
    },
}
DEMO_REVIEW_URL = "https://reviews.example.com/demo-shop"

DEMO_SERVICES = (
    ("oil-change", "Synthetic oil change", 8999),
    ("brakes", "Brake pads and rotors", 38999),
    ("tires", "Tire rotation and balance", 5999),
    ("diagnostics", "Check-engine diagnostics", 12999),
)


def midday_zone(now: datetime) -> str:
    """The demo zone whose local hour is closest to 13:00 at `now`."""

    def distance(zone: str) -> float:
        local = now.astimezone(ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 13)

    return min(DEMO_ZONES, key=distance)


@dataclass(frozen=True)
class DemoContacts:
    """One run's demo addresses and number: the customers the demo may message."""

    run: str
    emails: tuple[str, ...]
    phone: str

    @classmethod
    def for_run(cls, run: str | None = None, *, used_phones: Collection[str] = ()) -> DemoContacts:
        """New addresses for `run` (random when None), and the first fiction number from the
        run's own that no recent send used (the per-contact frequency cap would skip it)."""
        run = run or secrets.token_hex(3)
        local, domain = DEMO_EMAIL.split("@")
        emails = (f"{local}+{run}@{domain}", f"{local}+{run}.2@{domain}")
        start = int.from_bytes(run.encode(), "big") % len(DEMO_PHONES)
        order = DEMO_PHONES[start:] + DEMO_PHONES[:start]
        phone = next((p for p in order if p not in used_phones), order[0])
        return cls(run=run, emails=emails, phone=phone)


@dataclass
class Plan:
    """The processes to start and what to tell the user."""

    processes: list[Process] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    #: this run's demo addresses (whitelisted exactly) and number, when the demo whitelists
    demo_emails: tuple[str, ...] = ()
    demo_phone: str | None = None
    #: the stand-ins' ports (the services' come from their own settings: leadctl/run/ports.py)
    listeners: list[Listener] = field(default_factory=list)


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def plan(
    environ: dict[str, str],
    *,
    available: Callable[[str], bool],
    demo: DemoContacts | None = None,
) -> Plan:
    """Decide what to start from the environment (`available(name)`: is that command built;
    `demo`: this run's demo contacts, new ones when None)."""
    demo = demo or DemoContacts.for_run()
    out = Plan()
    env = out.env
    ports = {k: int(environ.get(PORT_VARS[k]) or v) for k, v in DEFAULT_PORTS.items()}
    webhook_port = int(environ.get("WEBHOOK_PORT") or 3000)
    ingest_url = _url(webhook_port)
    fake_sendgrid = not environ.get("SENDGRID_API_KEY")
    fake_twilio = not (environ.get("TWILIO_ACCOUNT_SID") and environ.get("TWILIO_AUTH_TOKEN"))
    simulate = not environ.get("SHOPMONKEY_API_KEY")

    if fake_sendgrid:
        env |= {
            "SENDGRID_API_KEY": "SG.fake-demo-key",
            "SENDGRID_FROM_EMAIL": environ.get("SENDGRID_FROM_EMAIL") or "shop@example.com",
            "SENDGRID_API_BASE_URL": _url(ports["sendgrid"]),
        }
        out.processes.append(
            Process("sendgrid", leadctl("simulate", "sendgrid", "--port", str(ports["sendgrid"])))
        )
        out.notes.append(f"fake SendGrid   {_url(ports['sendgrid'])} (records every request)")
    if fake_twilio:
        env |= {
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "fake-demo-token",
            "TWILIO_PHONE_NUMBER": environ.get("TWILIO_PHONE_NUMBER") or "+15005550006",
            "TWILIO_API_BASE_URL": _url(ports["twilio"]),
        }
        out.processes.append(
            Process("twilio", leadctl("simulate", "twilio", "--port", str(ports["twilio"])))
        )
        out.notes.append(f"fake Twilio     {_url(ports['twilio'])} (records every request)")
    if fake_sendgrid and fake_twilio and not environ.get("LEAD_EMAIL_WHITELIST", "").strip():
        env["LEAD_EMAIL_WHITELIST"] = ",".join(demo.emails)
        out.demo_emails = demo.emails
        out.notes.append(
            f"whitelist       {', '.join(demo.emails)} (this run's demo customers only)"
        )
        if not environ.get("LEAD_PHONE_WHITELIST", "").strip():
            env["LEAD_PHONE_WHITELIST"] = demo.phone
            out.demo_phone = demo.phone
            out.notes.append(f"phone whitelist {demo.phone} (the demo customers' SMS number)")
        # the demo's customers share these contacts: the per-customer caps would let one
        # message a day through, so the demo shows each campaign only without them
        caps = {"FREQUENCY_CAP_EMAIL": "0", "FREQUENCY_CAP_SMS": "0", "CAMPAIGN_CAP": "false"}
        unset = {k: v for k, v in caps.items() if not environ.get(k, "").strip()}
        if unset:
            env |= unset
            out.notes.append(
                f"caps off        {', '.join(unset)} (the demo customers share one number)"
            )
    if simulate:
        env["SHOPMONKEY_API_BASE_URL"] = _url(ports["shopmonkey"]) + "/v3"
    for name in ("ingest", "poller", "sequencer", "outbound"):
        if available(name):
            out.processes.append(Process(name, leadctl(name)))
        else:
            out.notes.append(f"{name:<15} not built yet: not started")
    if simulate:  # last, so ingest is (nearly) up when the first webhooks go out
        out.processes.append(
            Process(
                "shopmonkey",
                leadctl(
                    "simulate",
                    "shopmonkey",
                    "--port",
                    str(ports["shopmonkey"]),
                    "--companies",
                    ",".join(map(str, SIM_COMPANIES)),
                    "--seed",
                    str(SIM_SEED),
                    "--orders",
                    "5",
                    "--history-hours",
                    "2",
                    "--rate",
                    "6",
                    "--run-seed",
                    str(int.from_bytes(demo.run.encode(), "big") % 2**31),
                    "--demo-emails",
                    ",".join(demo.emails),
                    "--demo-phone",
                    demo.phone,
                    "--demo-story",
                    "--webhook-url",
                    ingest_url + COMPANY_WEBHOOK_PATH,
                ),
            )
        )
        out.notes.append(f"Shopmonkey sim  {_url(ports['shopmonkey'])}/v3 (orders every ~10 s)")
    admin_url = _url(int(environ.get("ADMIN_PORT") or 3090))
    out.notes.append(f"dashboard       {admin_url}/dashboard/ (operators only: sign in)")
    out.notes.append(f"metrics         {admin_url}/metrics (and each service's /metrics)")
    for p in out.processes:
        p.env |= env
        if p.name in ports:
            out.listeners.append(Listener(p.name, PORT_VARS[p.name], "127.0.0.1", ports[p.name]))
    return out


#: The demo's operator (hq), whose password `leadctl secrets local` generates into .env.local.
DEMO_OPERATOR = "demo.operator@example.com"


async def ensure_demo_operator(database_url: str, password: str) -> str:
    """The demo operator with `password` (added, or its password set when it differs);
    returns what it did."""
    from services.common import passwords
    from services.common.db.engine import async_engine
    from services.common.db.operators import add_operator, operator_by_email, set_credentials

    engine = async_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            found = await operator_by_email(conn, email=DEMO_OPERATOR)
            if found is None:
                await add_operator(
                    conn,
                    email=DEMO_OPERATOR,
                    role="hq",
                    password_hash=passwords.hash_secret(password),
                )
                return "added"
            if not passwords.verify(found.password_hash, password):
                await set_credentials(
                    conn, email=DEMO_OPERATOR, password_hash=passwords.hash_secret(password)
                )
                return "password set"
    finally:
        await engine.dispose()
    return "kept"
