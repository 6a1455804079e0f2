"""Kafka adapters shared by the services: producer, at-least-once consumer, DLQ, topics."""

from services.common.kafka.consumer import AtLeastOnceConsumer
from services.common.kafka.delivery import Delivered
from services.common.kafka.dlq import DeadLetter, DeadLetters
from services.common.kafka.producer import KafkaProducer

__all__ = ["AtLeastOnceConsumer", "DeadLetter", "DeadLetters", "Delivered", "KafkaProducer"]
