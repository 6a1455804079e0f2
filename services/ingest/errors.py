"""Ingest's exceptions, documented in one place; `entrypoints.http` maps each to one answer.

IngestError
├── RequestRejected        the caller's fault; nothing is produced (4xx with a JSON reason)
│   ├── Unauthorized           missing/wrong/stale signature or API key            → 401
│   │   └── SignInRefused      an operator's email or password is wrong (admin)    → 401
│   ├── TooManyAttempts        an account or address over its failed sign-ins      → 429
│   ├── UnknownTenant          no such (active) tenant                              → 404
│   │   └── UnknownCompany     no such (active) Shopmonkey company (company URL)    → 404
│   ├── PayloadTooLarge        body over MAX_BODY_BYTES                             → 413
│   ├── UnsupportedMediaType   not application/json                                 → 415
│   └── InvalidPayload         not JSON, not the v3 envelope, missing fields        → 400
├── Unavailable            a dependency failed; the caller should retry (503 + Retry-After)
│   ├── PublishUnavailable     Kafka did not acknowledge in time
│   ├── ShopmonkeyUnavailable  the Shopmonkey API timed out, failed or throttled us
│   │   └── ShopmonkeyRateLimited  429, with the server's Retry-After when it sent one
│   └── ReadModelUnavailable   PostgreSQL did not answer a dashboard read (503, no Retry-After)
├── ShopmonkeyRejected     the Shopmonkey API refused a request (401/403/400): no retry
│   └── OrderByRejected        400 on the `orderby` parameter (the other reading, ref §2.3)
└── BackfillError          `leadctl backfill` cannot go on: the tenant's company has no API
                           key, or the API ignored the createdDate filter or sort (no
                           resumable position)

A signed record that belongs to no tenant (another company, a location no tenant is mapped
to) is no error: the webhook answers 202 "ignored" with the reason (`domain.routing`).
"""

from __future__ import annotations

from services.common.errors import LeadOrchestratorError


class IngestError(LeadOrchestratorError):
    """Base of the ingest service's own errors."""


class RequestRejected(IngestError):
    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unauthorized(RequestRejected):
    status = 401


class SignInRefused(Unauthorized):
    pass


class TooManyAttempts(RequestRejected):
    status = 429

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class UnknownTenant(RequestRejected):
    status = 404


class UnknownCompany(UnknownTenant):
    pass


class PayloadTooLarge(RequestRejected):
    status = 413


class UnsupportedMediaType(RequestRejected):
    status = 415


class InvalidPayload(RequestRejected):
    status = 400


class Unavailable(IngestError):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PublishUnavailable(Unavailable):
    pass


class ShopmonkeyUnavailable(Unavailable):
    pass


class ShopmonkeyRateLimited(ShopmonkeyUnavailable):
    pass


class ReadModelUnavailable(Unavailable):
    pass


class ShopmonkeyRejected(IngestError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"Shopmonkey answered {status}: {message}")
        self.status = status
        self.message = message


class OrderByRejected(ShopmonkeyRejected):
    pass


class BackfillError(IngestError):
    pass
