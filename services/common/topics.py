"""Concrete topic names of one environment: the contracts' names behind an optional prefix."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.events import (
    ALL_TOPICS,
    CONTACT_SIGNALS,
    LEAD_CHANGES,
    ORDER_EVENTS,
    TOUCHPOINT_COMMANDS,
    TOUCHPOINT_OUTCOMES,
    dlq_topic,
)


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = ""

    @property
    def order_events(self) -> str:
        return self.prefix + ORDER_EVENTS

    @property
    def touchpoint_commands(self) -> str:
        return self.prefix + TOUCHPOINT_COMMANDS

    @property
    def touchpoint_outcomes(self) -> str:
        return self.prefix + TOUCHPOINT_OUTCOMES

    @property
    def contact_signals(self) -> str:
        return self.prefix + CONTACT_SIGNALS

    @property
    def lead_changes(self) -> str:
        return self.prefix + LEAD_CHANGES

    def main(self) -> list[str]:
        return [self.prefix + t for t in ALL_TOPICS]

    def with_dlqs(self) -> list[str]:
        return [t for topic in self.main() for t in (topic, dlq_topic(topic))]
