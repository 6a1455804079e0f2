"""Outbound's exceptions, documented in one place; `service_layer.delivery` decides what each
one means for a send.

OutboundError
├── TemplateError          unknown template or render failure: the command fails, no send
├── UnsendableCommand      a command that can never be sent as it is (its template does not
│                          render): its `failed` outcome is recorded and published, then the
│                          consumer dead-letters the record with the reason
└── ProviderError          a provider call did not end in an accepted message
    ├── ProviderRejected       permanent 4xx (invalid number, opted out): failed, no retry
    ├── ProviderUnavailable    certainly NOT processed (429, refused connection, 503, auth):
    │                          retry after a backoff, honouring Retry-After
    └── ProviderAmbiguous      MAY have been processed (timeout after the request left, Twilio
                               5xx): reconcile with the provider before anything else
"""

from __future__ import annotations

from services.common.errors import LeadOrchestratorError


class OutboundError(LeadOrchestratorError):
    """Base of the outbound service's own errors."""


class TemplateError(OutboundError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsendableCommand(OutboundError):
    """Raised by the handler once the command's `failed` outcome is recorded and published."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ProviderError(OutboundError):
    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider = provider
        self.reason = reason


class ProviderRejected(ProviderError):
    """The provider refused this message for good; `suppress` marks the contact opted out."""

    def __init__(self, provider: str, reason: str, *, suppress: bool = False) -> None:
        super().__init__(provider, reason)
        self.suppress = suppress


class ProviderUnavailable(ProviderError):
    """Nothing was processed; safe to send again after `retry_after` (seconds) if given."""

    def __init__(self, provider: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(provider, reason)
        self.retry_after = retry_after


class ProviderAmbiguous(ProviderError):
    """The request may have been processed: never resend before reconciling."""
