"""`leadctl backfill`: import a location's Shopmonkey order history (the command in `cli.py`;
the work is ingest's, `services.ingest.entrypoints.backfill`)."""
