"""The sequencer's exceptions (extends services.common.errors).

LeadOrchestratorError
└── ContractError
    └── BadRecord          a record that parses but cannot apply (no lead id, wrong tenant):
                           dead-lettered with the reason, the agent keeps going
"""

from __future__ import annotations

from services.common.errors import ContractError


class BadRecord(ContractError):
    """A well-formed record that makes no sense for the sequencer."""
