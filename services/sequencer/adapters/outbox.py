"""Everything the sequencer writes to Kafka, through one librdkafka producer: commands,
lead changes, dead letters, table changelog records and timer ticks.

Commands, lead changes and changelog records are buffered per partition while a batch is
handled and produced by `await flush()`, which returns only when everything was acknowledged
by the broker (the common `PartitionBuffer`; keyed records land on the partition murmur2
gives their tenant: DESIGN §2). Agents ack their source records only after that, so a crash
never loses an output; a record the broker refused is produced again until it is accepted
(an outage pauses the sequencer, it never drops).
"""

from __future__ import annotations

from collections.abc import Mapping

from schemas.events import LeadChanged, TouchPointCommand, dlq_topic
from services.common.domain import hops
from services.common.domain.dead_letter import DeadLetter
from services.common.kafka.partition_buffer import PartitionBuffer
from services.common.kafka.producer import KafkaProducer
from services.common.topics import Topics


class KafkaOutbox(PartitionBuffer):
    """The production `Outputs`; `FakeOutbox` in tests records the same calls."""

    service = "sequencer"

    def __init__(self, producer: KafkaProducer, topics: Topics) -> None:
        super().__init__(producer)
        self._topics = topics

    def command(self, command: TouchPointCommand) -> None:
        hops.stamp(hops.SEQUENCER_DECIDED)  # with the hops of the order it answers, if traced
        topic, tenant = self._topics.touchpoint_commands, str(command.tenant_id)
        self.add_keyed(topic, tenant, command.to_bytes(), hops.headers())

    def lead_changed(self, change: LeadChanged) -> None:
        self.add_keyed(self._topics.lead_changes, str(change.tenant_id), change.to_bytes())

    def dead_letter(self, letter: DeadLetter) -> None:
        letter.warn()
        headers = letter.headers(self.service)
        self.produce(dlq_topic(letter.topic), letter.value, key=letter.key, headers=headers)

    #: A table's changelog record, buffered on its partition: only the last record of each
    #: partition gets a delivery report (its offset is the partition's highest).
    changelog = PartitionBuffer.add

    def tick(self, topic: str, partition: int, value: bytes) -> None:
        self.produce(topic, value, partition=partition)

    def take_changelog_offsets(self) -> Mapping[tuple[str, int], int]:
        """Highest acknowledged offset per changelog partition since the last call."""
        return self.take_offsets()
