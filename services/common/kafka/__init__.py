"""Kafka adapters shared by the services: producer, at-least-once consumer, DLQ, topics,
client configuration. Import the module you need (nothing is imported here, so a pure module
that needs one value never loads the Kafka clients)."""
