"""The sequencer's domain code alone, in process: decode each order event, `Sequencer.on_order`
over memory stores (the lead encoded as the table would, each output serialised as the outbox
would), the collector off (the worker freezes its heap; here its pauses would be noise). No
Kafka, no Faust, no database: what a record costs the worker's own code, for comparing
checkouts where the full benchmark's ±10 % per run hides a few microseconds.

    uv run python bench/sequencer/domain.py                       # this checkout
    uv run python bench/sequencer/domain.py --checkout ../old     # another (since c1b3455)
    uv run python bench/sequencer/domain.py --profile             # where the time goes

The events are bench/sequencer/run.py's (new leads, one first email each). Prints the median
and the best of `--repeat` runs in µs an event (the best is the steadier figure on a busy
machine: a run is only ever slowed by what else runs).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checkout", type=Path, default=Path(__file__).resolve().parents[2])
    parser.add_argument("--profile", action="store_true", help="one run under cProfile")
    args = parser.parse_args()
    if args.events < 1 or args.repeat < 1:
        parser.error("--events and --repeat must be at least 1")
    if not (args.checkout / "services" / "sequencer").is_dir():
        parser.error(f"{args.checkout} is no checkout of this project")
    sys.path.insert(0, str(args.checkout.resolve()))
    run = _runner(args.events)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(run)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(30)
        return
    each = []
    for i in range(args.repeat):
        each.append(run())
        print(f"run {i + 1}/{args.repeat}: {each[-1]:.1f} µs an event", file=sys.stderr)
    print(
        f"{args.checkout}: median {statistics.median(each):.1f}, best {min(each):.1f} µs an event "
        f"({args.events:,} events, {args.repeat} runs: {', '.join(f'{x:.1f}' for x in each)})"
    )


def _runner(count: int) -> Any:
    """A function that runs `count` fresh events through a fresh sequencer; µs an event."""
    from bench.sequencer.run import event_bytes
    from schemas.events import OrderEvent
    from services.common.kafka.codec import decode
    from services.sequencer.adapters.lead_codec import encode_lead
    from services.sequencer.adapters.tenant_directory import StaticDirectory
    from services.sequencer.service_layer.sequencer import Sequencer

    class Leads:
        def __init__(self) -> None:
            self.data: dict[uuid.UUID, Any] = {}

        def get(self, lead_id: uuid.UUID) -> Any:
            return self.data.get(lead_id)

        def put(self, lead: Any, due: datetime | None) -> None:
            self.data[lead.lead_id] = lead
            encode_lead(lead)

    class Customers:
        def leads_of(self, tenant_id: uuid.UUID, customer_id: str) -> list[uuid.UUID]:
            return []

        def add(self, tenant_id: uuid.UUID, customer_id: str, lead_id: uuid.UUID) -> None:
            return None

    class Outbox:
        def command(self, command: Any) -> None:
            command.to_bytes()

        def lead_changed(self, change: Any) -> None:
            change.to_bytes()

    class Schedule:
        def schedule(self, lead_id: uuid.UUID, at: datetime) -> None:
            return None

    tenants = [uuid.uuid4() for _ in range(50)]

    def run() -> float:
        now = datetime.now(UTC)
        raws = [event_bytes(tenants[n % 50], n, now.isoformat()) for n in range(count)]
        directory = StaticDirectory("America/New_York")
        seq = Sequencer(leads=Leads(), customers=Customers(), outbox=Outbox(), schedule=Schedule())
        gc.collect()
        gc.disable()
        try:
            started = time.perf_counter()
            for raw in raws:
                event = decode(OrderEvent, raw)
                seq.on_order(event, directory.get(event.tenant_id), now)
            return (time.perf_counter() - started) / count * 1e6
        finally:
            gc.enable()

    return run


if __name__ == "__main__":
    main()
