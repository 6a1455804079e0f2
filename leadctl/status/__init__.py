"""`leadctl status`: the command (`cli`), and what it asks: the services' health endpoints
(`health`), Kafka (`kafka`) and PostgreSQL (`database`), shown by `render`."""
