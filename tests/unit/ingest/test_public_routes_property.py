"""No unauthenticated input yields a 5xx (DESIGN §11): arbitrary header values (raw bytes, not
only what a polite client sends) and bodies, unsigned or correctly signed, to every public
route of the real app over fake ports, and to every route of the admin listener (the sign-in
form as a browser sends it). Every answer is below 500 and nothing is logged as an error."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.logging import malformed_requests_at_info
from services.ingest.adapters.sendgrid_webhook import SendGridVerifier
from services.ingest.bootstrap import SignalParts
from services.ingest.entrypoints.admin import create_admin_app
from services.ingest.entrypoints.http import create_app
from services.ingest.service_layer.contact_signals import SignalService
from services.ingest.service_layer.operator_access import SignInLimits
from services.ingest.settings import IngestSettings
from tests.support import deployment_secrets
from tests.support.absurd import (
    ABSURD_BODIES,
    ABSURD_HEADERS,
    ABSURD_SIGN_IN_FORMS,
    ABSURD_VALUES,
    SIGN_IN_HEADERS,
    admin_routes,
    public_routes,
    raw_request,
)
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER
from tests.support.provider_signing import SG_SIGNATURE, SG_TIMESTAMP, Callers, SendGridSigner
from tests.unit.ingest.support_operators import operator_access
from tests.unit.ingest.support_signals import FakeLeads, FakePublisher, FakeStore
from tests.unit.ingest.test_webhook_http import WEBSITE_KEY, Harness

TWILIO_TOKEN = "twilio-token"
LEAD_TOKEN = "lead-api-token"
LEAD = uuid.uuid4()
HEADER_NAMES = [
    b"webhook-id",
    b"webhook-timestamp",
    b"webhook-signature",
    b"X-Shopmonkey-Signature",
    b"X-Twilio-Signature",
    SG_SIGNATURE.encode(),
    SG_TIMESTAMP.encode(),
    b"Authorization",
    b"Content-Type",
    b"X-Forwarded-For",
]
_header_value = st.one_of(
    st.sampled_from(ABSURD_HEADERS),
    st.binary(max_size=60).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    st.text(max_size=40)
    .map(lambda t: t.encode("utf-8", "replace"))
    .map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
_body = st.one_of(
    st.sampled_from(ABSURD_BODIES),
    st.binary(max_size=200),
    _json_value.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(ABSURD_VALUES).map(
        lambda v: json.dumps(
            {"submission_id": v, "email": v, "phone": v, "name": v, "kind": v}, default=str
        ).encode()
    ),
    st.dictionaries(
        st.sampled_from(["MessageSid", "MessageStatus", "From", "To", "Body", "ErrorCode"]),
        st.text(max_size=30),
    ).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items()).encode("utf-8", "replace")),
)


class Live:
    """The real app over fake ports, everything configured (SendGrid key, Twilio token, lead
    API and website keys, link signing keys), served on a loop of its own so hypothesis can
    drive it; beside it the admin listener's app on the same parts."""

    def __init__(self) -> None:
        self.harness = harness = Harness()
        self.signer = SendGridSigner.generate()
        leads = FakeLeads(tokens={LEAD_TOKEN: harness.company.tenant_id})
        leads.views[(harness.company.tenant_id, LEAD)] = "{}"
        harness.ingest = dataclasses.replace(
            harness.ingest,
            signals=SignalParts(
                service=SignalService(
                    store=FakeStore(), publisher=FakePublisher(), help_text="help"
                ),
                leads=leads,
                sendgrid=SendGridVerifier(self.signer.public_key, tolerance_seconds=300),
                twilio_auth_token=TWILIO_TOKEN,
                twilio_public_url=None,
                links=UNSUBSCRIBE_SIGNER,
                tenants=harness.tenants,
            ),
            # sign-in limits none exhausts: the forms reach the parsers
            operators=operator_access(
                harness.operators, limits=SignInLimits(per_account=10**6, per_address=10**6)
            ),
        )
        # throttling would answer most of them 429 before the parsers: a budget none exhausts
        app_settings = IngestSettings(
            tenant_id=harness.company.tenant_id,
            max_body_bytes=1024 * 1024,
            auth_failure_burst=10**5,
        )
        malformed_requests_at_info()  # as every service's setup_logging does
        self.loop = asyncio.new_event_loop()
        self.server = TestServer(create_app(app_settings, ingest=harness.ingest), loop=self.loop)
        admin = create_admin_app(app_settings, lambda: harness.ingest)
        self.admin_server = TestServer(admin, loop=self.loop)
        for server in (self.server, self.admin_server):
            self.loop.run_until_complete(server.start_server())
        assert self.server.port is not None and self.admin_server.port is not None
        self.port: int = self.server.port
        self.admin_port: int = self.admin_server.port
        self.targets = public_routes(harness.company.tenant_id, LEAD)
        self.admin_targets = admin_routes(harness.company.tenant_id)
        self.failures: list[str] = []
        self.seen: dict[str, set[int]] = {}

    def send(
        self,
        target: tuple[str, str],
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        *,
        admin: bool = False,
    ) -> int:
        method, path = target
        port = self.admin_port if admin else self.port
        status = self.loop.run_until_complete(raw_request(port, method, path, headers, body))
        self.seen.setdefault(path, set()).add(status)
        if status >= 500 or status == 0:
            self.failures.append(f"{method} {path} {headers!r} {body[:80]!r} -> {status}")
        return status

    def credentials(self, path: str, body: bytes) -> list[tuple[bytes, bytes]]:
        return Callers(
            port=self.port,
            webhook_secret=self.harness.company.webhook_secret,
            website_key=WEBSITE_KEY,
            lead_token=LEAD_TOKEN,
            sendgrid=self.signer,
            twilio_token=TWILIO_TOKEN,
        ).headers(path, body)

    def close(self) -> None:
        self.loop.run_until_complete(self.admin_server.close())
        self.loop.run_until_complete(self.server.close())
        self.loop.close()


def new_live() -> Live:
    """A `Live` built with the test deployment's secrets in the environment (a module-scoped
    fixture is set up before the per-test environment is)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in deployment_secrets.ENV.items():
            env.setenv(name, value)
        return Live()


@pytest.fixture
def live(caplog: pytest.LogCaptureFixture) -> Iterator[Live]:
    app = new_live()
    try:
        with caplog.at_level(logging.INFO):
            yield app
    finally:
        app.close()
    assert not app.failures, "\n".join(app.failures[:10])
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors[:5]


def test_every_absurd_header_and_body_on_every_route_is_answered_below_500(live: Live) -> None:
    """Each absurd header value in place of each header a genuine caller sends (the others
    genuine, so the check of that one header is what answers), and each absurd body, signed
    and unsigned."""
    for target in live.targets:
        path = target[1]
        genuine = live.credentials(path, b"{}")
        names = {name for name, _ in genuine} | {b"Content-Type", b"Authorization"}
        for name in names:
            for value in ABSURD_HEADERS:
                headers = [(n, v) for n, v in genuine if n != name] + [(name, value)]
                live.send(target, headers, b"{}")
        for body in ABSURD_BODIES:
            live.send(target, [], body)
            live.send(target, live.credentials(path, body), body)
    for _, path in live.targets[:8]:  # past the signature checks: the parsers answered
        assert live.seen[path] - {401, 404}, (path, live.seen[path])
    assert 200 in live.seen[live.targets[8][1]]  # the genuine unsubscribe link's page


def test_every_absurd_header_and_body_on_every_admin_route_is_answered_below_500(
    live: Live,
) -> None:
    """The admin listener's routes the same way; the sign-in form also as a browser posts it
    (form content type, same origin) with absurd fields, so the sign-in itself answers."""
    for target in live.admin_targets:
        names = {name for name, _ in SIGN_IN_HEADERS} | {b"Authorization", b"Cookie"}
        for name in names:
            for value in ABSURD_HEADERS:
                headers = [(n, v) for n, v in SIGN_IN_HEADERS if n != name] + [(name, value)]
                live.send(target, headers, b"email=a%40b.co&password=x", admin=True)
        for body in [*ABSURD_BODIES, *ABSURD_SIGN_IN_FORMS]:
            live.send(target, [], body, admin=True)
            live.send(target, SIGN_IN_HEADERS, body, admin=True)
    assert 401 in live.seen["/dashboard/sign-in"]  # wrong email or password: it was tried


_ROUTE = st.integers(min_value=0, max_value=len(public_routes(LEAD, LEAD)) - 1)


@given(
    route=_ROUTE,
    headers=st.lists(st.tuples(st.sampled_from(HEADER_NAMES), _header_value), max_size=6),
    body=_body,
    sign=st.booleans(),
)
@settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_arbitrary_headers_and_bodies_never_get_a_5xx(
    shared: Live, route: int, headers: list[tuple[bytes, bytes]], body: bytes, sign: bool
) -> None:
    target = shared.targets[route]
    sent = list(headers)
    if sign:
        sent = [h for h in sent if h[0] != b"Content-Type"]
        sent += shared.credentials(target[1], body)
    shared.send(target, sent, body)


@pytest.fixture(scope="module")
def shared() -> Iterator[Live]:
    """One app for every example of the property test (function fixtures are not reset
    between hypothesis examples)."""
    app = new_live()
    yield app
    app.close()
    assert not app.failures, "\n".join(app.failures[:10])
