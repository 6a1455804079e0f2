"""Read a Shopmonkey company's records changed since a time, robust to the API's quirks
(reference §2.3). The poller reads with `read`; the backfill pages with `page`, `Keyset` and
`finished` (one sort-parameter fallback, one keyset step, one end-of-list test for both):

- Two streams: `updatedDate >= since` and, for rows never updated (`updatedDate` null on
  INSERT, §1.6), `updatedDate = null AND createdDate >= since`.
- Keyset paging: each page asks `field >= <last value seen>` with `skip` = the records
  already read at exactly that value, `orderby={"field":"asc"}`, `limit` 100 (capped there
  anyway). A record updated while we page moves past us instead of shifting a page boundary.
- Sort parameter, two readings: lowercase `orderby` (Aug 2026 probe) first; a 400 naming
  orderby switches that company to camelCase `orderBy` (Apr 2026 probe).
- A caller's extra filter (the poller's location filter) goes into every `where` but is not
  trusted: the API may ignore it (an invalid `locationId` filter returns the whole table,
  reference §3), so the caller checks every record itself (`domain.routing`).
- A dropped filter is detected by comparing `meta.total` with an unfiltered call and by
  records outside the window; an unsorted page (sort ignored) likewise. Either switches the
  stream to a full `skip` scan with the window applied here: slower, still correct.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from services.ingest.adapters.metrics import POLLER_FILTER_IGNORED, POLLER_UNSORTED
from services.ingest.domain.model import IngestCompany, Page
from services.ingest.domain.normalise import change_time, iso_z, parse_ts
from services.ingest.errors import OrderByRejected
from services.ingest.ports import RecordSource

log = logging.getLogger(__name__)
ORDERBY_STYLES = ("orderby", "orderBy")


@dataclass
class ReadReport:
    records: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    pages: int = 0
    filter_ignored: bool = False
    unsorted: bool = False
    complete: bool = True

    @property
    def max_change(self) -> datetime | None:
        times = [t for r in self.records.values() if (t := change_time(r)) is not None]
        return max(times) if times else None


@dataclass(slots=True)
class Keyset:
    """Where keyset paging on a time field stands: the records at or after `at` (spelled
    `raw` in the next filter, as the API wrote it), of which the first `skip` were read."""

    at: datetime
    raw: str
    skip: int = 0

    @classmethod
    def start(cls, at: datetime, skip: int = 0) -> Keyset:
        return cls(at, iso_z(at), skip)

    def advance(self, page: Page, field: str) -> None:
        """Past a non-empty page sorted ascending on `field`: the next one starts at its last
        instant, skipping the records already read there (ties span pages)."""
        last_raw = page.data[-1][field]
        last = parse_ts(last_raw)
        assert last is not None
        if last == self.at:
            self.skip += len(page.data)
        else:
            self.at, self.raw = last, str(last_raw)
            self.skip = sum(1 for r in page.data if parse_ts(r.get(field)) == last)


@dataclass
class _Stream:
    field: str
    base: dict[str, Any]
    check_total: bool
    #: asked for, never checked here (see the module docstring)
    extra: dict[str, Any]


def _key(record: dict[str, Any]) -> tuple[str, str]:
    meta = record.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(record.get("id")), str(version if version is not None else change_time(record))


def _matches(record: dict[str, Any], stream: _Stream, since: datetime) -> bool:
    for name, value in stream.base.items():
        if record.get(name) != value:
            return False
    moment = parse_ts(record.get(stream.field))
    return moment is not None and moment >= since


def _ascending(records: list[dict[str, Any]], name: str) -> bool:
    times = [parse_ts(r.get(name)) for r in records]
    present = [t for t in times if t is not None]
    if len(present) != len(times):
        return False
    return all(a <= b for a, b in itertools.pairwise(present))


class RecordReader:
    def __init__(self, source: RecordSource, *, page_limit: int = 100, max_pages: int = 5000):
        self._source = source
        self._limit = page_limit
        self._max_pages = max_pages
        self._orderby: dict[str, str] = {}

    async def read(
        self,
        company: IngestCompany,
        table: str,
        since: datetime,
        *,
        where: dict[str, Any] | None = None,
    ) -> ReadReport:
        """Every record changed since `since`; `where`: an extra filter (see the docstring)."""
        report = ReadReport()
        extra = where or {}
        streams = (
            _Stream("updatedDate", {}, check_total=True, extra=extra),
            _Stream("createdDate", {"updatedDate": None}, check_total=False, extra=extra),
        )
        for stream in streams:
            await self._read_stream(company, table, stream, since, report)
        if report.filter_ignored:
            POLLER_FILTER_IGNORED.labels(company.id).inc()
        if report.unsorted:
            POLLER_UNSORTED.labels(company.id).inc()
        return report

    async def page(
        self,
        company: IngestCompany,
        table: str,
        *,
        where: dict[str, Any] | None,
        order_field: str | None,
        skip: int,
        limit: int | None = None,
    ) -> Page:
        """One page sorted ascending on `order_field`, in the sort parameter's spelling this
        company's API takes (`orderby`, else `orderBy` once the first was refused)."""
        assert company.shopmonkey_api_key
        style = self._orderby.get(company.id, ORDERBY_STYLES[0])
        while True:
            try:
                return await self._source.list_records(
                    company.shopmonkey_api_key,
                    table,
                    where=where,
                    orderby={order_field: "asc"} if order_field else None,
                    orderby_param=style,
                    limit=limit or self._limit,
                    skip=skip,
                )
            except OrderByRejected:
                if style == ORDERBY_STYLES[-1]:
                    raise
                style = ORDERBY_STYLES[ORDERBY_STYLES.index(style) + 1]
                self._orderby[company.id] = style
                log.warning(
                    "Shopmonkey refused `orderby`; using `%s` for company %s", style, company.id
                )

    def _absorb(self, page: Page, report: ReadReport, since: datetime) -> int:
        """Keep the page's records inside the window; returns how many were new."""
        new = 0
        for record in page.data:
            if record.get("id") is None:
                continue
            moment = change_time(record)
            if moment is None or moment < since:
                continue
            key = _key(record)
            if key not in report.records:
                report.records[key] = record
                new += 1
        return new

    def finished(self, page: Page, skip: int) -> bool:
        """Whether `page`, asked for with `skip`, is the last one."""
        if not page.data:
            return True
        if page.has_more is not None:
            return not page.has_more
        if page.total is not None:
            return skip + len(page.data) >= page.total
        return len(page.data) < self._limit

    async def _read_stream(
        self,
        company: IngestCompany,
        table: str,
        stream: _Stream,
        since: datetime,
        report: ReadReport,
    ) -> None:
        lower = iso_z(since)
        where = {**stream.extra, **stream.base, stream.field: {"gte": lower}}
        page = await self.page(company, table, where=where, order_field=stream.field, skip=0)
        report.pages += 1
        outside = [r for r in page.data if not _matches(r, stream, since)]
        # The reference's check: a filtered total equal to the unfiltered one means the filter
        # was dropped, or matched every record; a full scan is right (and no dearer) for both.
        suspect_total = False
        if stream.check_total and page.total and (outside or not self.finished(page, 0)):
            unfiltered = await self.page(
                company, table, where=None, order_field=None, skip=0, limit=1
            )
            suspect_total = unfiltered.total is not None and page.total >= unfiltered.total
        if outside:
            report.filter_ignored = True
            log.warning(
                "Shopmonkey ignored the %s filter on /%s for company %s (total %s%s): "
                "scanning and filtering locally",
                stream.field,
                table,
                company.id,
                page.total,
                ", same as unfiltered" if suspect_total else "",
            )
        sorted_ok = _ascending(page.data, stream.field)
        if not sorted_ok and not outside:
            report.unsorted = True
            log.warning(
                "Shopmonkey ignored orderby on /%s for company %s: scanning", table, company.id
            )
        if outside or suspect_total or not sorted_ok:
            await self._scan(company, table, where, stream, page, since, report)
        else:
            await self._keyset(company, table, stream, page, since, report)

    async def _scan(
        self,
        company: IngestCompany,
        table: str,
        where: dict[str, Any],
        stream: _Stream,
        page: Page,
        since: datetime,
        report: ReadReport,
    ) -> None:
        skip = 0
        while True:
            self._absorb(page, report, since)
            if self.finished(page, skip):
                return
            skip += len(page.data)
            if report.pages >= self._max_pages:
                report.complete = False
                return
            page = await self.page(company, table, where=where, order_field=stream.field, skip=skip)
            report.pages += 1

    async def _keyset(
        self,
        company: IngestCompany,
        table: str,
        stream: _Stream,
        page: Page,
        since: datetime,
        report: ReadReport,
    ) -> None:
        position = Keyset.start(since)
        while True:
            new = self._absorb(page, report, since)
            if self.finished(page, position.skip):
                return
            if new == 0 or report.pages >= self._max_pages:
                log.warning("paging stalled on /%s for company %s", table, company.id)
                report.complete = False
                return
            position.advance(page, stream.field)
            where = {**stream.extra, **stream.base, stream.field: {"gte": position.raw}}
            page = await self.page(
                company, table, where=where, order_field=stream.field, skip=position.skip
            )
            report.pages += 1
            if page.data and not _ascending(page.data, stream.field):
                report.unsorted = True
                report.complete = False
                log.warning("page order changed mid-read on /%s for company %s", table, company.id)
                return
