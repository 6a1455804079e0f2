"""Which leads may have something due, per partition, so a timer tick never scans the table.

In memory and compact: per partition, a bytearray of 16-byte lead ids per 10-second bucket
(about 16 bytes a lead; a million leads ≈ 16 MB) plus a heap of bucket numbers. An entry is a
hint, not a promise: the tick re-reads the lead and evaluates it, so stale or duplicate
entries cost one lookup and are dropped. The index is rebuilt from the lead table when a
partition becomes active on this worker (after recovery), and dropped when it is revoked.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field

ID_SIZE = 16


@dataclass(slots=True)
class _Partition:
    buckets: dict[int, bytearray] = field(default_factory=dict)
    heap: list[int] = field(default_factory=list)
    entries: int = 0


class DueIndex:
    def __init__(self, bucket_seconds: int = 10) -> None:
        self.bucket_seconds = bucket_seconds
        self._parts: dict[int, _Partition] = {}

    def _bucket(self, at: float) -> int:
        return int(at) // self.bucket_seconds

    def add(self, partition: int, lead_id: bytes, at: float) -> None:
        """Remember that `lead_id` (on `partition`) may be due at epoch second `at`."""
        part = self._parts.get(partition)
        if part is None:
            part = self._parts[partition] = _Partition()
        bucket = self._bucket(at)
        data = part.buckets.get(bucket)
        if data is None:
            part.buckets[bucket] = bytearray(lead_id)
            heapq.heappush(part.heap, bucket)
        else:
            data += lead_id
        part.entries += 1

    def has_due(self, partition: int, now: float) -> bool:
        part = self._parts.get(partition)
        return bool(part and part.heap and part.heap[0] <= self._bucket(now))

    def pop_due(self, partition: int, now: float, limit: int = 10_000) -> list[bytes]:
        """Distinct lead ids whose bucket has come (at most `limit`; the rest stay)."""
        part = self._parts.get(partition)
        if part is None:
            return []
        now_bucket = self._bucket(now)
        seen: set[bytes] = set()
        out: list[bytes] = []
        while part.heap and part.heap[0] <= now_bucket and len(out) < limit:
            bucket = heapq.heappop(part.heap)
            data = part.buckets.pop(bucket)
            n = len(data) // ID_SIZE
            part.entries -= n
            for i in range(n):
                lead_id = bytes(data[i * ID_SIZE : (i + 1) * ID_SIZE])
                if lead_id in seen:
                    continue
                if len(out) >= limit:
                    rest = data[i * ID_SIZE :]
                    part.buckets[bucket] = rest
                    part.entries += len(rest) // ID_SIZE
                    heapq.heappush(part.heap, bucket)
                    break
                seen.add(lead_id)
                out.append(lead_id)
        return out

    def extend(self, partition: int, entries: Iterable[tuple[bytes, float]]) -> int:
        """Add `entries` (lead id, due epoch second), e.g. while rebuilding after assignment;
        entries that agents add meanwhile are kept (duplicates are harmless hints)."""
        count = 0
        for lead_id, at in entries:
            self.add(partition, lead_id, at)
            count += 1
        return count

    def drop(self, partition: int) -> None:
        self._parts.pop(partition, None)

    def partitions(self) -> set[int]:
        return set(self._parts)

    def size(self, partition: int | None = None) -> int:
        if partition is not None:
            part = self._parts.get(partition)
            return part.entries if part else 0
        return sum(p.entries for p in self._parts.values())
