"""Every active Shopmonkey company and location (tenant), and the hashes of their website keys
and lead-API tokens, held in memory (`domain.directory.Directory`, a few hundred rows) so that
every caller, known or not, is answered without the database.

The directory is loaded at start and again whenever PostgreSQL says a tenant or company
changed (LISTEN `tenants_changed`, sent by the triggers of migration 0011), at the latest every
TENANT_CACHE_SECONDS (what a lost notification costs). An id or key not in it is answered by
a directory loaded after it arrived, so a location added a moment ago answers even before its
notification is read; yet misses cost at most one reload a second whatever their number, never
a query per request: a miss within a second of the last miss reload waits for the next one, which
every miss until then shares. While PostgreSQL is down the last directory is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Sequence

import psycopg
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.db.companies import CompanyRecord, companies_with_tenants
from services.common.db.models import Tenant
from services.common.db.tenants import TenantRecord, hash_api_key
from services.common.secret_box import VARIABLE as SECRETS_VARIABLE
from services.common.secret_box import SecretBox, SecretUndecryptable
from services.ingest.adapters.metrics import DIRECTORY_RELOADS
from services.ingest.domain.directory import Directory
from services.ingest.domain.model import IngestCompany, IngestTenant
from services.ingest.domain.shopmonkey_signatures import WebhookKeys
from services.ingest.errors import Unavailable

log = logging.getLogger(__name__)

#: The notification channel of migration 0011's triggers.
CHANNEL = "tenants_changed"
#: Longest wait between two attempts to listen again after the connection was lost.
MAX_LISTEN_BACKOFF = 30.0


def ingest_company(
    record: CompanyRecord, tenants: Sequence[TenantRecord], *, api_key: str | None = None
) -> IngestCompany:
    """A company and its active tenants as ingest routes by them; `api_key` stands in when the
    company has none of its own."""
    return IngestCompany(
        id=record.id,
        name=record.name,
        webhook_keys=WebhookKeys.from_secret(record.signature_scheme, record.webhook_secret),
        shopmonkey_api_key=record.shopmonkey_api_key or api_key,
        tenants=tuple(
            IngestTenant(
                id=t.id,
                name=t.name,
                active=t.active,
                company_id=t.shopmonkey_company_id,
                location_id=t.shopmonkey_location_id,
            )
            for t in tenants
            if t.active
        ),
    )


class PostgresTenants:
    """`TenantDirectory` from the in-memory directory. The company of the seed's default tenant
    (TENANT_ID) may use SHOPMONKEY_API_KEY when it has no key of its own; no other company ever
    borrows a key. `start()` loads it and follows changes; without `start()` it is loaded on
    first use (one-off commands)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        box: SecretBox,
        ttl: float,
        listen_url: str | None = None,
        miss_reload_seconds: float = 1.0,
        default_tenant_id: uuid.UUID | None = None,
        default_api_key: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._box = box
        self._period = ttl if ttl > 0 else 60.0
        self._listen_url = listen_url
        self._miss_reload = miss_reload_seconds
        self._default_id = default_tenant_id
        self._default_key = default_api_key or None
        self._clock = clock
        self._directory: Directory | None = None
        self._refused: set[str] = set()  # companies whose secrets do not decrypt, logged once
        self._missed_at = -math.inf  # when the last reload for a miss began
        self._next_miss: asyncio.Future[None] | None = None  # the wait the throttled misses share
        self._loading: asyncio.Task[Directory] | None = None
        self._loads_begun = 0  # loads started so far; the one in flight is `_loading_number`
        self._loading_number = 0
        self._changed: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # lifecycle -------------------------------------------------------------------------------
    async def start(self) -> PostgresTenants:
        """Load the directory (a PostgreSQL outage is logged: the first look-up retries) and
        follow its changes until `close()`."""
        self._changed = asyncio.Event()
        try:
            await self.reload()
        except Unavailable as exc:
            log.warning("tenant directory not loaded yet (%s); retrying", exc)
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._refresh(), name="tenant-directory-refresh"))
        if self._listen_url:
            self._tasks.append(loop.create_task(self._listen(), name="tenant-directory-listen"))
        return self

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # look-ups ---------------------------------------------------------------------------------
    async def company(self, company_id: str) -> IngestCompany | None:
        directory = self._directory if self._directory is not None else await self._first()
        found = directory.companies.get(company_id)
        if found is None and (again := await self._after_miss()) is not None:
            found = again.companies.get(company_id)
        return found

    async def company_anew(self, company_id: str) -> IngestCompany | None:
        """Through the miss reloads (`_after_miss`): at most one a second, whoever asks."""
        again = await self._after_miss()
        return again.companies.get(company_id) if again is not None else None

    async def company_of(self, tenant_id: uuid.UUID) -> IngestCompany | None:
        directory = self._directory if self._directory is not None else await self._first()
        found = directory.by_tenant.get(tenant_id)
        if found is None and (again := await self._after_miss()) is not None:
            found = again.by_tenant.get(tenant_id)
        return found

    async def get(self, tenant_id: uuid.UUID) -> IngestTenant | None:
        company = await self.company_of(tenant_id)
        return company.by_id.get(tenant_id) if company is not None else None

    async def for_api_key(self, api_key: str) -> IngestTenant | None:
        digest = hash_api_key(api_key)
        directory = self._directory if self._directory is not None else await self._first()
        found = directory.by_website_key.get(digest)
        if found is None and (again := await self._after_miss()) is not None:
            found = again.by_website_key.get(digest)
        return found

    async def for_lead_token(self, digest: str) -> uuid.UUID | None:
        """The active tenant whose lead-API token has this hash."""
        directory = self._directory if self._directory is not None else await self._first()
        found = directory.by_lead_token.get(digest)
        if found is None and (again := await self._after_miss()) is not None:
            found = again.by_lead_token.get(digest)
        return found

    async def pollable(self) -> list[IngestCompany]:
        """Read anew each time (a poll cycle is every POLL_INTERVAL_SECONDS)."""
        directory = await self.reload()
        return [c for c in directory.companies.values() if c.tenants and c.can_call_shopmonkey]

    async def ping(self) -> bool:
        try:
            async with asyncio.timeout(2.0), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    # loading ----------------------------------------------------------------------------------
    async def reload(self) -> Directory:
        """Load the directory anew (one load at a time: concurrent callers share it); raises
        Unavailable when PostgreSQL cannot be read (the last directory stays in use)."""
        if self._loading is None or self._loading.done():  # done: its callback not run yet
            self._loads_begun += 1
            self._loading_number = self._loads_begun
            self._loading = asyncio.get_running_loop().create_task(self._load())
            self._loading.add_done_callback(self._loaded)
        return await asyncio.shield(self._loading)

    async def _reload_begun_after(self, begun: int) -> Directory:
        """A directory whose load began after load number `begun`: a load already in flight
        then may have read before the change the caller knows of, so it is waited for and a
        new one made."""
        # a finished load is awaited without yielding to the loop, so its done callback (which
        # clears `_loading`) never ran and this loop spun forever, holding the event loop
        while (
            (task := self._loading) is not None
            and not task.done()
            and self._loading_number <= begun
        ):
            with contextlib.suppress(Unavailable):
                await asyncio.shield(task)
        return await self.reload()

    def _loaded(self, task: asyncio.Task[Directory]) -> None:
        if self._loading is task:  # not a newer load begun before this callback ran
            self._loading = None
        if not task.cancelled():
            task.exception()  # retrieved here: the callers see it through the shield

    async def _load(self) -> Directory:
        keys = select(Tenant.id, Tenant.website_api_key_sha256, Tenant.lead_api_key_sha256)
        refused: list[str] = []
        try:
            async with self._engine.connect() as conn:
                found = await companies_with_tenants(
                    conn, box=self._box, with_empty=True, refused=refused
                )
                hashes = (await conn.execute(keys.where(Tenant.active.is_(True)))).all()
        except (OperationalError, DBAPIError, OSError) as exc:
            raise Unavailable(f"PostgreSQL: {type(exc).__name__}") from exc
        self._refuse(refused, loaded=len(found))
        directory = Directory.of(
            (self._ingest(record, tenants) for record, tenants in found),
            website_keys={
                r.id: r.website_api_key_sha256 for r in hashes if r.website_api_key_sha256
            },
            lead_tokens={r.id: r.lead_api_key_sha256 for r in hashes if r.lead_api_key_sha256},
        )
        self._directory = directory
        DIRECTORY_RELOADS.inc()
        log.debug("tenant directory: %d companies, %d tenants", len(found), len(directory))
        return directory

    def _refuse(self, refused: list[str], *, loaded: int) -> None:
        """Companies whose stored secrets no key of SECRETS_ENCRYPTION_KEYS opens are left
        out (their webhooks are refused), each named once in the log: one bad row never stops
        every other location. When none opens at all, the keys are wrong: a config error at
        start, and later the last directory stays in use."""
        if refused and not loaded:
            reason = (
                f"no company's stored secrets decrypt with any key of {SECRETS_VARIABLE} "
                f"({len(refused)} companies)"
            )
            if self._directory is None:
                raise SecretUndecryptable(reason)  # at start: the keys are wrong
            raise Unavailable(reason)  # later (keys changed under it): the last one is served
        for company_id in refused:
            if company_id not in self._refused:
                log.error(
                    "company %s left out: its stored secrets do not decrypt with any key of %s",
                    company_id,
                    SECRETS_VARIABLE,
                )
        self._refused = set(refused)

    def _ingest(self, record: CompanyRecord, tenants: Sequence[TenantRecord]) -> IngestCompany:
        default = self._default_key if any(t.id == self._default_id for t in tenants) else None
        return ingest_company(record, tenants, api_key=default)

    async def _first(self) -> Directory:
        """The directory when none was loaded yet (start failed, or one-off use)."""
        # `is None`, not falsiness: a directory of no tenants is empty, not missing
        return self._directory if self._directory is not None else await self.reload()

    async def _after_miss(self) -> Directory | None:
        """A key not in the directory: the directory anew, from a load begun after the miss
        arrived, or None when PostgreSQL cannot be read. With a change notified and not loaded
        yet (or a load in flight) it is loaded at once; otherwise at most one miss reload is
        made each `miss_reload_seconds`: a miss sooner than that after the last one waits for
        the next, shared by every miss until then (random ids cost a reload a second at most,
        and a key created a moment ago, whose notification is not read yet, still answers)."""
        begun = self._loads_begun
        pending = self._loading is not None or (
            self._changed is not None and self._changed.is_set()
        )
        wait = self._missed_at + self._miss_reload - self._clock()
        if not pending and wait > 0:
            if self._next_miss is None or self._next_miss.done():
                self._next_miss = asyncio.ensure_future(asyncio.sleep(wait))
            await asyncio.shield(self._next_miss)  # a caller gone leaves it to the others
        self._missed_at = self._clock()
        try:
            # not the load in flight: it may have read the tenants before the change whose
            # notification (a company, then its location, say) made this miss a pending one
            return await self._reload_begun_after(begun)
        except Unavailable:
            return None

    async def _refresh(self) -> None:
        """Reload on every change notification, and at the latest every period."""
        assert self._changed is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self._period)
            self._changed.clear()
            try:
                await self.reload()
            except Unavailable as exc:
                log.warning("tenant directory not reloaded (%s); serving the last one", exc)

    async def _listen(self) -> None:
        """LISTEN for changes; a lost connection is opened again (with backoff), and whatever
        changed meanwhile is picked up by a reload once listening again."""
        assert self._changed is not None and self._listen_url is not None
        delay = 1.0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._listen_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._changed.set()
                    delay = 1.0
                    async for _ in conn.notifies():
                        self._changed.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("tenant change notifications lost (%s); listening again", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_LISTEN_BACKOFF)
