"""Tenants' timezone, SMS state rules, opening hours and nurture plan, from PostgreSQL.

Held in memory (200+ rows): all of them read before the first batch is processed, and again
every TENANT_CACHE_SECONDS; a tenant not seen yet is looked up once before its batch is
processed, then cached (also when missing, for TENANT_CACHE_SECONDS). A tenant that is not
in `tenants` gets the default plan in SEQUENCER_DEFAULT_TIMEZONE; an invalid `nurture_plan`
is logged and replaced by the default plan, never half-applied. The versions of its plans
(`plan_versions`, `leadctl plans set`) come along, so each lead follows the version in force
at its event time (`TenantConfig`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.common.cache import TtlCache
from services.common.db.models import LocationClosedDay, LocationHours, PlanVersion, Tenant
from services.common.domain.send_windows import SendWindowPolicy, WeeklyHours
from services.sequencer.adapters import metrics
from services.sequencer.domain.campaigns import (
    NO_CAMPAIGNS,
    Campaign,
    CampaignPlan,
    CampaignPlanError,
    parse_campaign,
    parse_campaigns,
)
from services.sequencer.domain.plan import (
    DEFAULT_PLAN,
    NurturePlan,
    PlanError,
    TenantConfig,
    parse_plan,
)

log = logging.getLogger(__name__)


def config_for(
    tenant_id: uuid.UUID,
    *,
    timezone: str,
    us_state: str | None,
    hours: WeeklyHours | None,
    nurture_plan: dict[str, Any] | None,
    campaign_plans: dict[str, Any] | None = None,
    closed_days: Iterable[date] = (),
    versions: Iterable[tuple[str, datetime, dict[str, Any]]] = (),
) -> TenantConfig:
    """`versions`: (kind: nurture or a campaign, valid from, document), oldest first."""
    try:
        plan = parse_plan(nurture_plan)
    except PlanError as exc:
        metrics.PLAN_ERRORS.inc()
        log.error("tenant %s: invalid nurture plan, using the default: %s", tenant_id, exc)
        plan = DEFAULT_PLAN
    try:
        campaigns = parse_campaigns(campaign_plans)
    except CampaignPlanError as exc:  # fail closed: no campaign rather than a wrong one
        metrics.PLAN_ERRORS.inc()
        log.error("tenant %s: invalid campaign plans, every campaign off: %s", tenant_id, exc)
        campaigns = NO_CAMPAIGNS
    policy = SendWindowPolicy.for_location(
        timezone=timezone, us_state=us_state, location_hours=hours or None, closed_days=closed_days
    )
    nurture: list[tuple[datetime, NurturePlan]] = []
    by_campaign: dict[Campaign, list[tuple[datetime, CampaignPlan]]] = {}
    for kind, valid_from, document in versions:
        if kind == "nurture":
            try:
                nurture.append((valid_from, parse_plan(document)))
            except PlanError as exc:
                metrics.PLAN_ERRORS.inc()
                log.error("tenant %s: invalid nurture plan version: %s", tenant_id, exc)
                nurture.append((valid_from, DEFAULT_PLAN))
            continue
        campaign = Campaign(kind)
        try:
            version = parse_campaign(campaign, document)
        except CampaignPlanError as exc:
            metrics.PLAN_ERRORS.inc()
            log.error("tenant %s: invalid %s plan version, off: %s", tenant_id, kind, exc)
            version = NO_CAMPAIGNS.of(campaign)
        by_campaign.setdefault(campaign, []).append((valid_from, version))
    return TenantConfig(
        tenant_id,
        plan,
        policy,
        known=True,
        campaigns=campaigns,
        plan_versions=tuple(sorted(nurture, key=lambda v: v[0])),
        campaign_versions=tuple(
            (c, tuple(sorted(v, key=lambda v: v[0]))) for c, v in sorted(by_campaign.items())
        ),
    )


class StaticDirectory:
    """Fixed configs (tests, benchmarks); unknown tenants get the default."""

    def __init__(self, default_timezone: str, configs: Iterable[TenantConfig] = ()) -> None:
        self.default_timezone = default_timezone
        self.configs = {c.tenant_id: c for c in configs}

    def get(self, tenant_id: uuid.UUID) -> TenantConfig:
        config = self.configs.get(tenant_id)
        if config is None:
            policy = SendWindowPolicy.for_location(timezone=self.default_timezone)
            config = TenantConfig(tenant_id, DEFAULT_PLAN, policy, known=False)
            self.configs[tenant_id] = config
        return config

    async def ensure(self, tenant_ids: Iterable[uuid.UUID]) -> None:
        return None

    async def refresh(self) -> None:
        return None


class PostgresDirectory(StaticDirectory):
    """The `Directory` port over PostgreSQL; `ttl`: how long a missing tenant stays missing."""

    def __init__(self, engine: AsyncEngine, default_timezone: str, *, ttl: float) -> None:
        super().__init__(default_timezone)
        self.engine = engine
        #: tenants not in `tenants` (negative entries only): looked up again once expired
        self._misses: TtlCache[uuid.UUID, TenantConfig] = TtlCache(ttl=ttl)
        #: every tenant was read once: until then the first look-up reads them all
        self._whole = False

    async def _load(self, tenant_ids: list[uuid.UUID] | None) -> dict[uuid.UUID, TenantConfig]:
        tenants = select(
            Tenant.id, Tenant.timezone, Tenant.us_state, Tenant.nurture_plan, Tenant.campaign_plans
        )  # inactive tenants keep their plan: their existing leads still follow it
        hours = select(
            LocationHours.tenant_id,
            LocationHours.weekday,
            LocationHours.opens_at,
            LocationHours.closes_at,
        )
        closed = select(LocationClosedDay.tenant_id, LocationClosedDay.day)
        versions = select(
            PlanVersion.tenant_id,
            PlanVersion.campaign,
            PlanVersion.valid_from,
            PlanVersion.document,
        ).order_by(PlanVersion.tenant_id, PlanVersion.campaign, PlanVersion.version)
        if tenant_ids is not None:
            tenants = tenants.where(Tenant.id.in_(tenant_ids))
            hours = hours.where(LocationHours.tenant_id.in_(tenant_ids))
            closed = closed.where(LocationClosedDay.tenant_id.in_(tenant_ids))
            versions = versions.where(PlanVersion.tenant_id.in_(tenant_ids))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(tenants)).all()
            hour_rows = (await conn.execute(hours)).all()
            closed_rows = (await conn.execute(closed)).all()
            version_rows = (await conn.execute(versions)).all()
        closed_days: dict[uuid.UUID, list[date]] = {}
        for c in closed_rows:
            closed_days.setdefault(c.tenant_id, []).append(c.day)
        by_tenant: dict[uuid.UUID, WeeklyHours] = {}
        for h in hour_rows:
            by_tenant.setdefault(h.tenant_id, {})[h.weekday] = (h.opens_at, h.closes_at)
        versions_of: dict[uuid.UUID, list[tuple[str, datetime, dict[str, Any]]]] = {}
        for v in version_rows:
            versions_of.setdefault(v.tenant_id, []).append((v.campaign, v.valid_from, v.document))
        return {
            r.id: config_for(
                r.id,
                timezone=r.timezone,
                us_state=r.us_state,
                hours=by_tenant.get(r.id),
                nurture_plan=r.nurture_plan,
                campaign_plans=r.campaign_plans,
                closed_days=closed_days.get(r.id, ()),
                versions=versions_of.get(r.id, ()),
            )
            for r in rows
        }

    async def refresh(self) -> None:
        """Reload every tenant (plans and hours change while the worker runs)."""
        loaded = await self._load(None)
        self.configs = {tid: c for tid, c in self.configs.items() if not c.known} | loaded
        self._misses.clear()
        self._whole = True
        log.debug("tenant directory: %d tenants", len(loaded))

    async def ensure(self, tenant_ids: Iterable[uuid.UUID]) -> None:
        """Look up tenants never seen (or missing for longer than the TTL) in one query. The
        first call reads every tenant: after a start, each location's first batch would
        otherwise wait for a read of its own (200 locations, 200 reads)."""
        if not self._whole:
            await self.refresh()
        wanted = [
            t
            for t in set(tenant_ids)
            if t not in self.configs or (not self.configs[t].known and self._misses.peek(t) is None)
        ]
        if not wanted:
            return
        loaded = await self._load(wanted)
        self.configs.update(loaded)
        for t in wanted:
            if t not in loaded:
                self._misses.put(t, None)
                self.configs.pop(t, None)
                self.get(t)  # cache the default config for this unknown tenant
