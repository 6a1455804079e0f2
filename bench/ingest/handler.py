"""The webhook path's own code, in one process: µs of CPU a webhook that `WebhookIngest.handle`
spends on the same signed order deliveries as `run.py` (signature, JSON, envelope, routing,
normalising, the consent rows, the event and its bytes). Its ports are in memory: the
publisher makes the record's bytes (`to_bytes`, what the producer sends), and each port answers
after one suspension of its caller (`asyncio.sleep(0)`), as a round trip suspends it. No
aiohttp, Kafka or PostgreSQL (`run.py` measures the whole process): this isolates what this
code costs, steadily enough to compare two checkouts run from each, e.g. a baseline worktree.
It runs against checkouts older than the consent and visit ports (they are passed only when
`WebhookIngest` takes them).

    uv run python bench/ingest/handler.py [--webhooks 20000] [--repeat 7]

Prints the median and the best run (a run is only ever slowed by what else runs here).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.ingest.fixtures import BenchTenant, webhook_requests  # noqa: E402
from services.ingest.domain.model import IngestCompany, IngestTenant  # noqa: E402
from services.ingest.domain.shopmonkey_signatures import WebhookKeys  # noqa: E402
from services.ingest.service_layer.seen_events import SeenEvents  # noqa: E402
from services.ingest.service_layer.webhooks import WebhookConfig, WebhookIngest  # noqa: E402
from tests.support.deployment_secrets import LEAD_IDS  # noqa: E402

#: Deliveries first handled unmeasured: every cache warm (the fixtures cycle 1,000 phones).
WARM = 1_000


class Publisher:
    """Makes the record's bytes as the producer's would be, and answers."""

    def __init__(self) -> None:
        self.records = 0

    async def publish(self, event: Any) -> None:
        event.to_bytes()
        await asyncio.sleep(0)  # the acknowledgement's suspension, however short
        self.records += 1


class Consents:
    async def record(self, company_id: str, records: list[Any]) -> None:
        await asyncio.sleep(0)  # the commit's


class Locations:
    """Every customer new (a visit each): the bench's customers are all distinct."""

    def known(self, company_id: str, customer_id: str, tenant_id: uuid.UUID) -> bool:
        return False

    async def visit(
        self, company_id: str, customer_id: str, tenant_id: uuid.UUID, consent: Any = ()
    ) -> frozenset[uuid.UUID]:
        await asyncio.sleep(0)  # the commit's (with the consent, when it is given)
        return frozenset((tenant_id,))


class Customers:
    async def customer(self, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("the bench's orders embed their customer: no look-up")


def companies(tenants: list[BenchTenant]) -> dict[str, IngestCompany]:
    by_company: dict[str, list[BenchTenant]] = {}
    for t in tenants:
        by_company.setdefault(t.company_id, []).append(t)
    return {
        cid: IngestCompany(
            id=cid,
            name=cid,
            webhook_keys=WebhookKeys.from_secret("standard", ts[0].secret),
            shopmonkey_api_key=None,
            tenants=tuple(
                IngestTenant(
                    id=uuid.UUID(t.tenant_id),
                    name=t.location_id,
                    active=True,
                    company_id=cid,
                    location_id=t.location_id,
                )
                for t in ts
            ),
        )
        for cid, ts in by_company.items()
    }


def deliveries(tenants: list[BenchTenant], count: int) -> list[tuple[Any, ...]]:
    """(company id, tenant, headers, body) of `count` distinct signed order deliveries."""
    by_id = {t.tenant_id: t for t in tenants}
    out = []
    for raw in webhook_requests(tenants, count):
        head, body = raw.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        tenant_id = lines[0].split()[1].split("/")[3]
        headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        out.append((by_id[tenant_id].company_id, uuid.UUID(tenant_id), headers, body))
    return out


def ingest() -> tuple[WebhookIngest, Publisher]:
    publisher = Publisher()
    kwargs: dict[str, Any] = {
        "customers": Customers(),
        "publisher": publisher,
        "config": WebhookConfig(demo_mode=False, whitelist=frozenset(), lead_ids=LEAD_IDS),
        "seen_events": SeenEvents(),
    }
    accepted = inspect.signature(WebhookIngest).parameters  # older checkouts have fewer ports
    if "consents" in accepted:
        kwargs["consents"] = Consents()
    if "locations" in accepted:
        kwargs["locations"] = Locations()
    return WebhookIngest(**kwargs), publisher


async def one_run(tenants: list[BenchTenant], count: int) -> float:
    """CPU µs a webhook over `count` deliveries, one at a time, the first `WARM` unmeasured."""
    by_company = companies(tenants)
    handler, publisher = ingest()
    work = deliveries(tenants, count)

    async def handle_all(batch: list[tuple[Any, ...]]) -> None:
        for company_id, tenant_id, headers, body in batch:
            company = by_company[company_id]
            await handler.handle(
                company, headers, body, "application/json", tenant=company.by_id[tenant_id]
            )

    await handle_all(work[:WARM])
    gc.collect()
    started = time.process_time()
    await handle_all(work[WARM:])
    spent = time.process_time() - started
    assert publisher.records == count, publisher.records
    return spent / (count - WARM) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--per-company", type=int, default=5)
    args = parser.parse_args()
    if args.webhooks <= WARM:
        parser.error(f"--webhooks must be more than the {WARM:,} handled first to warm up")
    tenants = []
    for i in range(args.tenants):
        if i % args.per_company == 0:
            company_id, secret = f"co_b{uuid.uuid4().hex[:10]}", f"whsec_{uuid.uuid4().hex}"
        tid = uuid.uuid4()
        tenants.append(BenchTenant(str(tid), company_id, f"loc_b{tid.hex[:8]}", secret))
    runs = []
    for _ in range(args.repeat):  # on uvloop, as the services run (services/common/event_loop.py)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runs.append(runner.run(one_run(tenants, args.webhooks)))
    print(
        f"WebhookIngest.handle: {statistics.median(runs):.1f} µs a webhook (median of "
        f"{len(runs)}), best {min(runs):.1f}; runs " + ", ".join(f"{r:.1f}" for r in runs)
    )


if __name__ == "__main__":
    main()
