"""Which tenant (location) a Shopmonkey record belongs to (pure; webhook, poll and backfill).

A tenant is one location of a Shopmonkey company. An order belongs to the tenant mapped to
its own (`companyId`, `locationId`), never to another: an order of another company, of a
location no tenant is mapped to, or with an unreadable location is attributed to nobody
(`Unrouted`, with the reason the caller answers and counts). A customer is company-level
(reference §2.5, `locationIds[]`): its change concerns every location of the company.

The one exception is the legacy per-location webhook URL: an order without `locationId`
delivered there belongs to that URL's tenant (`default`), as single-location deliveries did;
on the company URL and in the poller such an order is `no_location`. Routing is a dict look-up
on the company's tenants, loaded with it (no I/O per record).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.ingest.domain.model import IngestCompany, IngestTenant

#: Longest Shopmonkey company/location id accepted (`tenants.shopmonkey_location_id`).
MAX_ID_LENGTH = 100

OTHER_COMPANY = "other_company"
NO_LOCATION = "no_location"
INVALID_LOCATION = "invalid_location"
UNKNOWN_LOCATION = "unknown_location"
NO_TENANTS = "no_tenants"
#: Every reason a record is attributed to no tenant (the metric's `reason` label).
REASONS = (OTHER_COMPANY, NO_LOCATION, INVALID_LOCATION, UNKNOWN_LOCATION, NO_TENANTS)


@dataclass(frozen=True, slots=True)
class Unrouted:
    """A record attributed to no tenant: `code` (one of REASONS) and a readable detail."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


def _other_company(company: IngestCompany, data: Mapping[str, Any]) -> Unrouted | None:
    """Unrouted when the record names a company other than `company` (absent: it is hers,
    the signature or the API key proved that)."""
    named = data.get("companyId")
    if named is None or named == company.id:
        return None
    shown = repr(named) if isinstance(named, str) and len(named) <= MAX_ID_LENGTH else "?"
    return Unrouted(OTHER_COMPANY, f"record of company {shown}, not of {company.id!r}")


def route_order(
    company: IngestCompany, data: Mapping[str, Any], *, default: IngestTenant | None = None
) -> IngestTenant | Unrouted:
    """The tenant of an order of `company`; `default`: the per-location URL's tenant, which
    takes an order that names no location (see the module docstring)."""
    if (other := _other_company(company, data)) is not None:
        return other
    location = data.get("locationId")
    if location is None or location == "":
        if default is not None:
            return default
        return Unrouted(NO_LOCATION, "order without locationId")
    if not isinstance(location, str) or len(location) > MAX_ID_LENGTH:
        return Unrouted(INVALID_LOCATION, "locationId is not an id")
    tenant = company.by_location.get(location)
    if tenant is None:
        return Unrouted(
            UNKNOWN_LOCATION, f"no tenant for location {location!r} of company {company.id!r}"
        )
    return tenant


def route_customer(
    company: IngestCompany, data: Mapping[str, Any]
) -> tuple[IngestTenant, ...] | Unrouted:
    """Every tenant of `company`: a customer's change reaches its leads at each location."""
    if (other := _other_company(company, data)) is not None:
        return other
    if not company.tenants:
        return Unrouted(NO_TENANTS, f"company {company.id!r} has no active location here")
    return company.tenants
