"""What a careless or hostile outsider sends: absurd values for every field, header and body,
and a raw HTTP client that can send any bytes (non-UTF-8 headers included), for the tests that
prove no public route answers 5xx to them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import Any

from schemas.base import Channel
from services.common.domain.signed_links import unsubscribe_token
from tests.support.deployment_secrets import UNSUBSCRIBE_SIGNER

#: Values for any JSON field: huge, non-ASCII digits, negative, float, empty, NUL bytes,
#: deeply nested, 10,000-element arrays, wrong types.
ABSURD_VALUES: list[Any] = [
    "x" * 1_000_000,
    "9" * 5000,
    "+1" + "9" * 38,
    "\u00b2\u00b3",
    "\u0661\u0662\u0663",
    "\uff11\uff12",
    -1,
    -(2**63),
    2**64,
    10**400,
    1.5,
    -0.0,
    1e308,
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x00" * 1000,
    [],
    {},
    None,
    True,
    list(range(10_000)),
    ["s"] * 10_000,
    [{"name": "svc"}] * 10_000,
    {f"k{n}": n for n in range(10_000)},
    "\ud800",
    "caf\u00e9 \U0001f697",
]

#: Header values: the same spirit, as bytes (raw, so not only what a polite client would send).
ABSURD_HEADERS: list[bytes] = [
    b"",
    b" ",
    "\u00b2".encode(),
    "\u0661\u0662".encode(),
    b"-5",
    b"1.5e9",
    b"9" * 5000,
    b"v1," + b"A" * 4000,
    b"Bearer " + b"k" * 4000,
    b"Bearer \xff\xfe",
    b"\xff\xfe\xfd",
    b"\x00",
    b"caf\xc3\xa9",
    b"application/x-www-form-urlencoded; charset=nope",
    b"application/json; charset=latin-1",
]


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


#: Bodies: absurd JSON documents, broken JSON, non-UTF-8, deep nesting, forms.
ABSURD_BODIES: list[bytes] = [
    b"",
    b"\x00",
    b"\xff\xfe\xfd",
    b"{",
    b"[]",
    b"null",
    b'"\\ud800"',
    nested(100_000),
    b'[{"event": "delivered", "x": ' + nested(1000) + b"}]",
    b'{"a":' * 5000 + b"1" + b"}" * 5000,
    json.dumps(list(range(10_000))).encode(),
    b"MessageSid=" + b"S" * 100_000,
    b"MessageSid=%ff%fe&From=%00&Body=STOP",
    *(
        json.dumps(
            {
                "apiVersion": value,
                "operation": "INSERT",
                "table": "order",
                "data": {"id": value, "customer": {"phone": value, "id": value}},
            },
            default=str,
        ).encode()
        for value in ABSURD_VALUES[:16]
    ),
]


def unsubscribe_link(tenant: uuid.UUID, lead: uuid.UUID) -> str:
    """A genuine unsubscribe link of the test deployment (LINK_SIGNING_KEYS) for `lead`, sent
    to an address the lead need not have (then it changes nothing)."""
    token = unsubscribe_token(
        UNSUBSCRIBE_SIGNER,
        tenant_id=tenant,
        lead_id=lead,
        channel=Channel.EMAIL,
        contact="absurd.sweep@example.com",
    )
    return f"/u/{token}"


def public_routes(tenant: uuid.UUID, lead: uuid.UUID) -> list[tuple[str, str]]:
    """(method, path) of every route of ingest's public port, for a known tenant and lead,
    an unknown tenant and paths that are no ids at all. The first eight are the ones whose
    callers authenticate (Shopmonkey's, the website's, SendGrid's, Twilio's), in this order:
    the known tenant's webhook, an unknown one, a mangled one, the seed's, the website form,
    SendGrid events, Twilio status, Twilio inbound. The unsubscribe links: a genuine signed
    one, a forged, a huge and a missing token, and the old unsigned form (410)."""
    link = unsubscribe_link(tenant, lead)
    return [
        ("POST", f"/webhooks/shopmonkey/{tenant}/order"),
        ("POST", f"/webhooks/shopmonkey/{uuid.uuid4()}/order"),
        ("POST", "/webhooks/shopmonkey/%C2%B2/order"),
        ("POST", "/webhooks/shopmonkey/order"),
        ("POST", "/api/leads"),
        ("POST", "/webhooks/sendgrid/events"),
        ("POST", "/webhooks/twilio/status"),
        ("POST", "/webhooks/twilio/inbound"),
        ("GET", link),
        ("POST", link),
        ("POST", "/u/%00%FF%C2%B2"),
        ("GET", "/u/" + "A" * 5000),
        ("POST", "/u/"),
        ("GET", f"/unsubscribe/{tenant}/{lead}"),
        ("POST", f"/unsubscribe/{tenant}/{lead}"),
        ("POST", "/unsubscribe/%00/%FF"),
        ("GET", f"/api/leads/{lead}"),
        ("GET", "/api/leads/%C2%B2"),
        ("POST", f"/api/leads/{lead}/signals"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
    ]


def admin_routes(tenant: uuid.UUID) -> list[tuple[str, str]]:
    """(method, path) of every route of ingest's admin listener (operators: the sign-in page,
    the dashboard and its JSON; Prometheus), with query strings that are no window or tenant
    at all."""
    return [
        ("GET", "/dashboard/sign-in"),
        ("POST", "/dashboard/sign-in"),
        ("POST", "/dashboard/sign-out"),
        ("GET", "/dashboard/"),
        ("GET", f"/dashboard/api/summary?tenant={tenant}&window=60"),
        ("GET", "/dashboard/api/summary?tenant=%C2%B2&window=%00"),
        ("GET", "/dashboard/api/summary?window=" + "9" * 5000),
        ("GET", "/metrics"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/openapi.json"),
    ]


#: What a browser sends with the sign-in form (the form's type; a same-origin request).
SIGN_IN_HEADERS: list[tuple[bytes, bytes]] = [
    (b"Content-Type", b"application/x-www-form-urlencoded"),
    (b"Sec-Fetch-Site", b"same-origin"),
]
#: Bodies a browser's sign-in form could carry, absurd ones (and every ABSURD_BODIES).
ABSURD_SIGN_IN_FORMS: list[bytes] = [
    b"email=&password=",
    b"email=" + b"a" * 100_000 + b"&password=x",
    b"email=%00%ff&password=%00",
    b"email=sam%40example.com&password=" + b"p" * 100_000,
    b"email=\xff&password[]=1&password[]=2",
    "email=\u00b2@example.com&password=\u0661".encode(),
]


async def raw_request(
    port: int, method: str, path: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> int:
    """Send one request as bytes; the status code of the answer (0 when the server closed the
    connection without one)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close"]
        head += [name + b": " + value for name, value in headers]
        head.append(b"Content-Length: " + str(len(body)).encode())
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        line = await reader.readline()
    except ConnectionError:
        return 0
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    parts = line.split()
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else 0
