"""`leadctl topics`: create, list and fix the project's Kafka topics."""
