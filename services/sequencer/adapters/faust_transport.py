"""Faust's aiokafka transport, with a seek back to committed offsets that also seeks to 0, and
the mapping of our transport settings to Faust's broker credentials.

Faust drops records it fetched but could not hand to a stream (flow stopped by a rebalance,
a partition paused meanwhile, the generation changed) and relies on `perform_seek` ("seek
stream partitions to committed offsets", also run when recovery ends) to read them again.
aiokafka's `seek_to_committed` seeks only where the committed offset is > 0: where the group
committed offset 0 (`leadctl replay` rewinding to the start of a partition) or nothing yet
(a new group), the position stayed past the dropped records and they were never processed
nor committed. Seen as a replay that never finished: the group's offset stuck at 0 on a
partition whose only record was dropped (tests/integration/sequencer, ~1 run in 5).

Here those partitions go back to where the group starts reading them: offset 0, or the reset
position (`consumer_auto_offset_reset`) when nothing is committed. Changelog partitions are
left alone: the group commits nothing for them, recovery and standbys position them itself.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP
from faust.types.auth import CredentialsT

from services.common.kafka.connection import KafkaConnection


async def seek_back_to_committed(
    consumer: AIOKafkaConsumer, *, reset: str, skip_topics: Collection[str] = ()
) -> dict[TopicPartition, int | None]:
    """`consumer.seek_to_committed()`, plus the seeks it leaves out: to 0 where 0 is
    committed, to the `reset` position ('earliest' or 'latest') where nothing is, except on
    `skip_topics`. Returns each assigned partition's committed offset (None: none)."""
    committed: dict[TopicPartition, int | None] = dict(await consumer.seek_to_committed())
    unset = []
    for tp, offset in committed.items():
        if tp.topic in skip_topics:
            continue
        if offset == 0:
            consumer.seek(tp, 0)
        elif offset is None:
            unset.append(tp)
    if unset:
        if reset == "latest":
            await consumer.seek_to_end(*unset)
        else:
            await consumer.seek_to_beginning(*unset)
    return committed


class ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    async def seek_to_committed(self) -> Mapping[TP, int]:
        result: Mapping[TP, int] = await self.call_thread(self._seek_back)
        return result

    async def _seek_back(self) -> dict[TopicPartition, int | None]:
        app: Any = self.consumer.app
        return await seek_back_to_committed(
            self._ensure_consumer(),
            reset=str(app.conf.consumer_auto_offset_reset),
            skip_topics=app.tables.changelog_topics,
        )


class Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_aiokafka.Transport):
    """`kafka://` with the consumer above (`app.transport = Transport(...)`)."""

    Consumer = Consumer


def broker_credentials(kafka: KafkaConnection) -> CredentialsT | None:
    """Faust's `broker_credentials` for a connection (aiokafka then gets the same protocol,
    SASL user and verifying TLS context as every librdkafka client); None for PLAINTEXT."""
    if kafka.sasl:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            ssl_context=kafka.ssl_context(),
            mechanism=kafka.sasl_mechanism,
        )
    context = kafka.ssl_context()
    return None if context is None else faust.SSLCredentials(context)
