"""Every active company, its active locations and the hashes of their callers' keys, as one
immutable value: what ingest answers every caller from, without the database (pure)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from services.ingest.domain.model import IngestCompany, IngestTenant


@dataclass(frozen=True, slots=True)
class Directory:
    """Look-ups by Shopmonkey company id, tenant id, website-key hash and lead-token hash."""

    companies: Mapping[str, IngestCompany] = field(default_factory=dict)
    by_tenant: Mapping[uuid.UUID, IngestCompany] = field(default_factory=dict)
    by_website_key: Mapping[str, IngestTenant] = field(default_factory=dict)
    by_lead_token: Mapping[str, uuid.UUID] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        companies: Iterable[IngestCompany],
        *,
        website_keys: Mapping[uuid.UUID, str],
        lead_tokens: Mapping[uuid.UUID, str],
    ) -> Directory:
        """From the active companies (each with its active tenants) and the key hashes of
        tenants (`tenant id → sha256`); a hash of a tenant not among them is left out."""
        by_id = {c.id: c for c in companies}
        by_tenant = {t.id: c for c in by_id.values() for t in c.tenants}
        return cls(
            companies=by_id,
            by_tenant=by_tenant,
            by_website_key={
                digest: by_tenant[tid].by_id[tid]
                for tid, digest in website_keys.items()
                if tid in by_tenant
            },
            by_lead_token={digest: tid for tid, digest in lead_tokens.items() if tid in by_tenant},
        )

    def __len__(self) -> int:
        return len(self.by_tenant)
