"""A Shopmonkey simulator: the v3 API subset ingest uses and signed webhook deliveries."""
