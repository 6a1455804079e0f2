"""No unauthenticated input yields a 5xx (DESIGN §11): arbitrary header values (raw bytes, not
only what a polite client sends) and bodies, unsigned or correctly signed, to every public
route of the real app over fake ports. Every answer is below 500 and nothing is logged as an
error."""

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
from services.ingest.entrypoints.http import create_app
from services.ingest.service_layer.contact_signals import SignalService
from services.ingest.settings import IngestSettings
from tests.support.absurd import (
    ABSURD_BODIES,
    ABSURD_HEADERS,
    ABSURD_VALUES,
    public_routes,
    raw_request,
)
from tests.support.provider_signing import SG_SIGNATURE, SG_TIMESTAMP, Callers, SendGridSigner
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
    API and website keys), served on a loop of its own so hypothesis can drive it."""

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
        self.loop.run_until_complete(self.server.start_server())
        assert self.server.port is not None
        self.port: int = self.server.port
        self.targets = public_routes(harness.company.tenant_id, LEAD)
        self.failures: list[str] = []
        self.seen: dict[str, set[int]] = {}

    def send(self, target: tuple[str, str], headers: list[tuple[bytes, bytes]], body: bytes) -> int:
        method, path = target
        status = self.loop.run_until_complete(raw_request(self.port, method, path, headers, body))
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
        self.loop.run_until_complete(self.server.close())
        self.loop.close()


@pytest.fixture
def live(caplog: pytest.LogCaptureFixture) -> Iterator[Live]:
    app = Live()
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


_ROUTE = st.integers(min_value=0, max_value=16)


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
    app = Live()
    yield app
    app.close()
    assert not app.failures, "\n".join(app.failures[:10])
